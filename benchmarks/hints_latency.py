"""Colour hints: latency on a 1-megapixel image, and the propagation-alone quality curve.

  .venv/bin/python benchmarks/hints_latency.py                 # latency, default recipe model
  .venv/bin/python benchmarks/hints_latency.py --config=configs/demo.py --hints=20
  .venv/bin/python benchmarks/hints_latency.py --curve         # PSNR/ΔE00 vs number of hints

Latency: a checkpoint of the chosen config with random (He-normal) weights (latency does not
depend on their values) colours one --size image (default 1280×800 = 1.02 MP, a Kodak photo
resized) without hints and with --hints points, side by side, after a first call of each that
compiles; each of --repeats rounds calls every variant once, in turn (load from other
processes hits all alike); min and median; the parts (model, render, hints) are timed too.
"a click" colours the same prepared image again with hints, as an interactive session does:
the colorizer keeps an automatic model's prediction for it, so only the hints and the
full-resolution render run.

Curve: `hint_curve` (reusable: `from benchmarks.hints_latency import hint_curve, held_out_crops`)
scores propagation over a prior — grey by default, i.e. propagation alone, or any model's
prediction — on centre crops of Kodak photos and Sintel frames (../shared/data), with
`hints.sample_from_truth` points (seeded per image: every method sees the same points, and
the points for n are the first n of those for a larger n).
"""
from __future__ import annotations

import argparse
import dataclasses
import glob
import os
import sys
import tempfile
import time
from typing import Callable, Sequence

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from colorjax import xla_flags  # noqa: E402
from benchmarks.colorize import load_config, random_checkpoint  # noqa: E402

xla_flags.apply()             # as launch.py does, before JAX starts

DATA = os.path.join(ROOT, "..", "shared", "data")


def held_out_crops(data_dir: str = DATA, size: int = 256, every: int = 3) -> list[np.ndarray]:
  """Centre square crops resized to size×size, float32 sRGB [size, size, 3] in [0, 1]: every
  `every`-th Kodak photo and the first frame of every (`every` − 1)-th Sintel shot (a shot's
  consecutive frames would repeat the same picture)."""
  files = sorted(glob.glob(os.path.join(data_dir, "photos", "*.png")))[::every]
  shots: dict[str, str] = {}
  for f in sorted(glob.glob(os.path.join(data_dir, "animation", "*.png"))):
    shots.setdefault(os.path.basename(f).rsplit("_frame", 1)[0], f)
  files += sorted(shots.values())[::max(every - 1, 1)]
  crops = []
  for f in files:
    with Image.open(f) as im:
      im = im.convert("RGB")
      w, h = im.size
      s = min(w, h)
      box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
      crops.append(np.asarray(im.crop(box).resize((size, size), Image.BICUBIC), np.float32) / 255)
  return crops


def hint_curve(images: Sequence[np.ndarray], counts: Sequence[int] = (0, 1, 2, 5, 10, 20),
               prior: Callable[[np.ndarray], np.ndarray] | None = None, seed: int = 0,
               patch: int | None = None, **propagate_kwargs) -> dict[int, dict[str, float]]:
  """{n: {"psnr", "delta_e", "ssim"}} means over `images` (sRGB [H, W, 3] in [0, 1]) of the
  propagated colours with n hints sampled from the truth.

  `prior(lab)` gives the prior a*b* [H, W, 2] (Lab units) for an image's Lab [H, W, 3] (use
  only its L*!); None = grey (propagation alone). Points: hints.sample_from_truth with
  np.random.default_rng((seed, image index)). Output L* is the truth's.
  """
  from colorjax import color, hints, metrics
  patch = hints.DEFAULT_PATCH if patch is None else patch
  labs = [color.rgb_to_lab(np.asarray(im, np.float32)) for im in images]
  priors = [None if prior is None else np.asarray(prior(lab), np.float32) for lab in labs]
  truth = np.stack(images).astype(np.float32)
  out = {}
  for n in counts:
    preds = []
    for i, (lab, p) in enumerate(zip(labs, priors)):
      s = hints.sample_from_truth(lab[..., 1:], n, np.random.default_rng((seed, i)), patch=patch)
      ab = hints.propagate(lab[..., 0], s.hint_ab, s.mask, p, **propagate_kwargs)
      preds.append(color.lab_to_rgb(np.concatenate([lab[..., :1], ab], axis=-1)))
    m = metrics.image_metrics(np.stack(preds), truth)
    out[n] = {k: float(np.mean(m[k])) for k in ("psnr", "delta_e", "ssim")}
  return out


def print_curve(curve: dict[int, dict[str, float]], label: str) -> None:
  base = curve.get(0)
  print(f"{label}\n  hints   PSNR dB   ΔE00    SSIM" + ("    ΔPSNR   ΔE00 vs 0" if base else ""))
  for n, m in curve.items():
    extra = (f"  {m['psnr'] - base['psnr']:+6.2f}  {100 * (m['delta_e'] / base['delta_e'] - 1):+6.1f}%"
             if base else "")
    print(f"  {n:5d}   {m['psnr']:7.2f}  {m['delta_e']:6.2f}  {m['ssim']:6.3f}{extra}")


def _alternating_times(fns: dict, repeats: int) -> dict[str, tuple[float, float]]:
  """{name: (min, median) seconds} over `repeats` rounds calling each fn once per round, in
  turn, so that load from other processes hits all of them alike."""
  times: dict[str, list[float]] = {name: [] for name in fns}
  for _ in range(repeats):
    for name, fn in fns.items():
      t0 = time.perf_counter()
      fn()
      times[name].append(time.perf_counter() - t0)
  return {name: (min(t), float(np.median(t))) for name, t in times.items()}


def latency(args) -> None:
  import jax
  from colorjax import hints, inference
  w, h = (int(v) for v in args.size.split("x"))
  photo = os.path.join(DATA, "photos", "kodim05.png")
  if os.path.exists(photo):
    with Image.open(photo) as im:
      image = np.asarray(im.convert("L").resize((w, h), Image.BICUBIC))
  else:                                    # no shared data: a smooth synthetic image
    yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w], np.float32)[:, None, None]
    image = np.uint8(255 * (0.5 + 0.4 * np.sin(9 * xx) * np.cos(7 * yy)))
  rng = np.random.default_rng(0)
  points = [(float(x), float(y), tuple(int(c) for c in rng.integers(0, 256, 3)))
            for x, y in zip(rng.uniform(0, w - 1, args.hints), rng.uniform(0, h - 1, args.hints))]
  with tempfile.TemporaryDirectory() as tmp:
    workdir = args.workdir
    if workdir is None:
      workdir = os.path.join(tmp, "run")
      random_checkpoint(load_config(args.config), workdir)
    colorizer = inference.load(workdir, render_size=args.render_size)
    prepared = inference.prepare(image)
    bucket = colorizer.bucket(prepared)
    c = colorizer.config
    print(f"device: {jax.devices()[0].device_kind} ({os.cpu_count()} CPUs); model "
          f"{c.model.encoder} width {c.model.encoder_width}; image {w}×{h} "
          f"({w * h / 1e6:.2f} MP), render bucket {bucket[1]}×{bucket[0]}; {args.hints} hints, "
          f"{args.repeats} rounds after one that compiles")
    t0 = time.perf_counter()
    colorizer(prepared)
    colorizer(prepared, hints=points)
    print(f"first calls (compile + run, both): {time.perf_counter() - t0:.2f} s")
    small = colorizer.bucket_lightness(prepared)
    maps = colorizer.hint_maps(prepared, points)
    prior = colorizer.predict([prepared])[0]
    _, iters = hints.propagate(small, *maps, prior_ab=prior, return_iters=True)
    fresh = lambda: dataclasses.replace(prepared)      # a new object: the model runs again
    t = _alternating_times({
        "colorize, no hints": lambda: colorizer(fresh()),
        f"colorize, {args.hints} hints": lambda: colorizer(fresh(), hints=points),
        f"a click: {args.hints} hints, same image": lambda: colorizer(prepared, hints=points),
        "  model (predict, no hints)": lambda: colorizer.predict([fresh()]),
        "  render (full resolution)": lambda: colorizer.render(prepared, prior),
        "  hints: rasterise": lambda: colorizer.hint_maps(prepared, points),
        "  hints: propagate": lambda: hints.propagate(small, *maps, prior_ab=prior),
    }, args.repeats)
    print(f"{'':30s}    min s  median s")
    for name, (lo, med) in t.items():
      print(f"{name:30s} {lo:7.3f}  {med:7.3f}")
    work = t["  hints: rasterise"][0] + t["  hints: propagate"][0]
    print(f"hint work (rasterise + propagate): {work:.3f} s (min); propagation ran {iters} CG "
          "iterations over all grids")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default=os.path.join(ROOT, "configs", "default.py"))
  parser.add_argument("--workdir", help="a trained run to use instead of random weights")
  parser.add_argument("--render_size", type=int, default=None)
  parser.add_argument("--size", default="1280x800", help="latency image WxH")
  parser.add_argument("--hints", type=int, default=10, help="points for the latency run")
  parser.add_argument("--repeats", type=int, default=7)
  parser.add_argument("--curve", action="store_true", help="print the propagation-alone curve")
  parser.add_argument("--crop", type=int, default=256, help="curve: crop side in px")
  parser.add_argument("--counts", default="0,1,2,5,10,20")
  parser.add_argument("--every", type=int, default=3, help="curve: every n-th image")
  parser.add_argument("--data", default=DATA)
  args = parser.parse_args()
  if not args.curve:
    latency(args)
    return
  if not os.path.isdir(args.data):
    sys.exit(f"error: --data={args.data}: not found (the curve needs Kodak/Sintel images)")
  from colorjax import hints
  crops = held_out_crops(args.data, args.crop, args.every)
  counts = [int(c) for c in args.counts.split(",")]
  t0 = time.perf_counter()
  curve = hint_curve(crops, counts)
  print_curve(curve, f"propagation alone (grey prior), {len(crops)} crops {args.crop}×{args.crop}, "
                     f"λ={hints.LAMBDA:g} μ={hints.MU:g} patch {hints.DEFAULT_PATCH} "
                     f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
  main()
