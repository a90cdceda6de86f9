"""Footage benchmark: flicker (warping error, CDC), ΔE00 and frames/s, per-frame vs stabilised.

  .venv/bin/python benchmarks/video.py --workdir=runs/demo                 # everything below
  .venv/bin/python benchmarks/video.py --workdir=runs/demo --only=stability --frames=48
  .venv/bin/python benchmarks/video.py --workdir=runs/demo --only=long --long_minutes=10

Data: the three clips of ../shared/data/video/ (first --frames frames, scaled to 640×360) and
the Sintel sequences of ../shared/data/animation/ (frames grouped by sequence name). They are
colour footage, so the truth is known everywhere: the model sees only each frame's L*.

* stability: for each --strengths value (0 = per-frame), the warping error (Lai et al. 2018; flow
  on the input frames) and the CDC (Liu et al. 2021) of the output, of the true colour frames,
  and the *added* flicker (output − truth); ΔE00 against the truth. The default strength is
  `colorjax.temporal.DEFAULT_STRENGTH`.
* speed: frames/s of the colouring pipeline (prepare, cut detection, predict, stabilise, render;
  decode/encode excluded) at 360p, 720p, 1080p, per-frame and stabilised, alternated, best of 2;
  then one clip file to file (decode, encode and audio included).
* long: a generated --long_minutes video at 480p through `colorize_video`, peak RSS sampled.
"""
from __future__ import annotations

import argparse
import collections
import os
import resource
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from colorjax import xla_flags  # noqa: E402

xla_flags.apply()

DATA = os.path.join(ROOT, "..", "shared", "data")
CLIPS = ("caminandes_llama_drama_10s.mp4", "tears_of_steel_10s.mp4", "big_buck_bunny_0_30.webm")


def rss_mb() -> float:
  """Current resident set size (MB), from /proc."""
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith("VmRSS:"):
        return int(line.split()[1]) / 1024
  return float("nan")


def peak_rss_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_clip(path: str, frames: int, size=(640, 360), skip: int = 0) -> np.ndarray:
  import av
  import cv2
  out = []
  with av.open(path) as c:
    for i, f in enumerate(c.decode(video=0)):
      if i < skip:
        continue
      rgb = f.to_ndarray(format="rgb24")
      if (rgb.shape[1], rgb.shape[0]) != size:
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
      out.append(rgb)
      if len(out) == frames:
        break
  return np.stack(out)


def sintel_sequences(folder: str) -> dict[str, np.ndarray]:
  from PIL import Image
  groups = collections.defaultdict(list)
  for name in sorted(os.listdir(folder)):
    if name.endswith(".png") and "_frame_" in name:
      groups[name.split("_frame_")[0]].append(os.path.join(folder, name))
  return {k: np.stack([np.asarray(Image.open(p).convert("RGB")) for p in v])
          for k, v in groups.items() if len(v) >= 2}


def shots(frames: np.ndarray) -> list[tuple[int, int]]:
  """[start, end) of each shot, from colorjax's cut detector on the frames' L*."""
  from colorjax import inference, temporal
  detector = temporal.CutDetector()
  for f in frames:
    detector.push(inference.prepare(f).lightness)
  detector.finish()
  bounds = [0, *detector.cuts, len(frames)]
  return [(a, b) for a, b in zip(bounds, bounds[1:]) if b - a >= 2]


def shot_stability(frames: np.ndarray, segments, flows) -> dict[str, float]:
  """warp_error and cdc within shots (a pair across a cut is not flicker), averaged over shots
  weighted by their frame pairs."""
  from colorjax import video
  values = [(b - a - 1, video.stability(frames[a:b], *flows[i]))
            for i, (a, b) in enumerate(segments)]
  total = sum(n for n, _ in values)
  return {k: sum(n * v[k] for n, v in values) / total for k in ("warp_error", "cdc")}


def colour(colorizer, frames: np.ndarray, strength: float, batch: int) -> tuple[np.ndarray, list]:
  from colorjax import video
  footage = video.FootageColorizer(colorizer, strength, batch_size=batch)
  stream = (video.Frame(i, f) for i, f in enumerate(frames))
  return np.stack([rgb for _, rgb in footage(stream)]), footage.cuts


def stability(colorizer, args) -> None:
  from colorjax import temporal, video
  strengths = [float(s) for s in args.strengths.split(",")]
  sets = {}
  for name in CLIPS:
    path = os.path.join(DATA, "video", name)
    if os.path.exists(path):
      sets[name.split("_")[0]] = load_clip(path, args.frames, skip=args.skip.get(name, 0))
  animation = os.path.join(DATA, "animation")
  if os.path.isdir(animation):
    sintel = sintel_sequences(animation)
    sets.update({f"sintel/{k}": v for k, v in sintel.items()})
  print(f"stability: {len(sets)} sequences; strengths {strengths} (default "
        f"{temporal.DEFAULT_STRENGTH}); warping error and CDC ×1e3 within shots; "
        f"added = output − truth")
  print(f"{'sequence':>34} {'T':>4} {'strength':>8} {'ΔE00':>7} {'warp':>8} {'+warp':>8} "
        f"{'CDC':>7} {'+CDC':>7} {'s':>6} cuts")
  rows = []
  for name, truth in sets.items():
    segments = shots(truth)
    flows = [video.input_flows(truth[a:b]) for a, b in segments]
    t = shot_stability(truth, segments, flows)
    print(f"{name:>34} {len(truth):>4} {'truth':>8} {'':>7} {1e3 * t['warp_error']:>8.3f} "
          f"{'':>8} {1e3 * t['cdc']:>7.3f}")
    for s in strengths:
      t0 = time.perf_counter()
      out, cuts = colour(colorizer, truth, s, args.batch)
      seconds = time.perf_counter() - t0
      m = shot_stability(out, segments, flows)
      de = video.mean_delta_e(out, truth)
      row = {"seq": name, "T": len(truth), "s": s, "de": de, "warp": m["warp_error"],
             "cdc": m["cdc"], "add_warp": m["warp_error"] - t["warp_error"],
             "add_cdc": m["cdc"] - t["cdc"], "sintel": name.startswith("sintel/")}
      rows.append(row)
      print(f"{'':>34} {'':>4} {s:>8g} {de:>7.3f} {1e3 * row['warp']:>8.3f} "
            f"{1e3 * row['add_warp']:>8.3f} {1e3 * row['cdc']:>7.3f} {1e3 * row['add_cdc']:>7.3f} "
            f"{seconds:>6.1f} {cuts}")
  print("\nsummary (mean over sequences; reduction of added flicker vs strength 0):")
  print(f"{'set':>8} {'strength':>8} {'ΔE00':>7} {'ΔE vs 0':>8} {'+warp':>8} {'-%':>6} "
        f"{'+CDC':>7} {'-%':>6}")
  for label, pick in (("clips", lambda r: not r["sintel"]), ("sintel", lambda r: r["sintel"]),
                      ("all", lambda r: True)):
    base = None
    for s in strengths:
      sel = [r for r in rows if r["s"] == s and pick(r)]
      if not sel:
        continue
      de, aw, ac = (float(np.mean([r[k] for r in sel])) for k in ("de", "add_warp", "add_cdc"))
      base = base or (de, aw, ac)
      print(f"{label:>8} {s:>8g} {de:>7.3f} {100 * (de / base[0] - 1):>+7.1f}% "
            f"{1e3 * aw:>8.3f} {100 * (1 - aw / base[1]):>6.1f} {1e3 * ac:>7.3f} "
            f"{100 * (1 - ac / base[2]):>6.1f}")


def speed(colorizer, args) -> None:
  from colorjax import temporal, video
  path = os.path.join(DATA, "video", CLIPS[2])
  if not os.path.exists(path):
    print("speed: no clip")
    return
  base = load_clip(path, args.speed_frames, size=(1920, 1080), skip=300)
  import cv2
  print(f"speed: {args.speed_frames} frames of {CLIPS[2]} (from frame 300), batch {args.batch}; "
        f"frames/s of prepare + cuts + predict + stabilise + render (best of 2, alternated)")
  print(f"{'size':>10} {'per-frame':>10} {'stabilised':>11} {'ratio':>6}")
  for height in (360, 720, 1080):
    size = (height * 16 // 9, height)
    frames = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in base])
    colour(colorizer, frames[:args.batch + 3], temporal.DEFAULT_STRENGTH, args.batch)  # compile
    best = {0.0: 0.0, temporal.DEFAULT_STRENGTH: 0.0}
    for _ in range(2):
      for s in best:
        t0 = time.perf_counter()
        colour(colorizer, frames, s, args.batch)
        best[s] = max(best[s], len(frames) / (time.perf_counter() - t0))
    per, stab = best.values()
    print(f"{size[0]}×{size[1]:<5} {per:>10.2f} {stab:>11.2f} {stab / per:>6.2f}")
  with tempfile.TemporaryDirectory() as tmp:
    src = os.path.join(DATA, "video", CLIPS[1])
    r = video.colorize_video(colorizer, src, os.path.join(tmp, "out.mp4"), progress=False,
                             batch_size=args.batch)
    print(f"file to file: {CLIPS[1]} (640×360, {r.frames} frames): {r.fps:.2f} frames/s, "
          f"cuts {r.cuts}")


def make_long_video(path: str, minutes: float, height: int = 480) -> int:
  """A generated clip: a textured background panning, shapes moving, a cut every 20 s."""
  import av
  width = height * 16 // 9 // 2 * 2
  n = int(minutes * 60 * 24)
  rng = np.random.default_rng(0)
  tile = (rng.random((height // 8 + 2, width // 8 + 2, 3)) * 255).astype(np.uint8)
  import cv2
  texture = cv2.resize(tile, ((width // 8 + 2) * 8, (height // 8 + 2) * 8),
                       interpolation=cv2.INTER_CUBIC)
  with av.open(path, "w") as out:
    v = out.add_stream("libx264", rate=24)
    v.width, v.height, v.pix_fmt = width, height, "yuv420p"
    v.options = {"preset": "ultrafast", "crf": "28"}
    for i in range(n):
      shot = i // (20 * 24)
      dx = (i % 16)
      img = np.roll(texture, shot * 37, axis=2 if shot % 3 == 2 else 0)[dx // 2:dx // 2 + height,
                                                                         dx:dx + width].copy()
      x = (5 * i) % (width - 80)
      img[100:180, x:x + 80] = (250, 240, 220)
      out.mux(v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
    out.mux(v.encode(None))
  return n


def long_run(colorizer, args) -> None:
  from colorjax import video
  with tempfile.TemporaryDirectory() as tmp:
    src = os.path.join(tmp, "long.mp4")
    t0 = time.perf_counter()
    n = make_long_video(src, args.long_minutes, args.long_height)
    print(f"long: generated {n} frames ({args.long_minutes} min at 24 fps, "
          f"{args.long_height}p) in {time.perf_counter() - t0:.0f} s; RSS {rss_mb():.0f} MB")
    samples = []
    t0 = time.perf_counter()

    def sample(count):
      samples.append((count, rss_mb()))
      print(f"long: {count} frames written, {time.perf_counter() - t0:.0f} s, "
            f"RSS {samples[-1][1]:.0f} MB", flush=True)
    original = video.VideoWriter.write

    def write(self, rgb, pts):         # sample RSS every 1000 frames written
      original(self, rgb, pts)
      self._n = getattr(self, "_n", 0) + 1
      if self._n % 1000 == 0:
        sample(self._n)
    video.VideoWriter.write = write
    t0 = time.perf_counter()
    r = video.colorize_video(colorizer, src, os.path.join(tmp, "out.mp4"), progress=False,
                             batch_size=args.batch)
    seconds = time.perf_counter() - t0
    video.VideoWriter.write = original
    print(f"long: {r.frames} frames in {seconds:.0f} s ({r.fps:.1f} frames/s), {len(r.cuts)} cuts")
    print("long: RSS (MB) by frames written: " +
          ", ".join(f"{c}: {m:.0f}" for c, m in samples))
    print(f"long: peak RSS of the process {peak_rss_mb():.0f} MB")


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", required=True, help="a trained run (see README)")
  parser.add_argument("--only", choices=["stability", "speed", "long"], default=None)
  parser.add_argument("--frames", type=int, default=96, help="frames per clip (stability)")
  parser.add_argument("--strengths", default="0,0.8,0.9,0.95")
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--speed_frames", type=int, default=24)
  parser.add_argument("--long_minutes", type=float, default=10.0)
  parser.add_argument("--long_height", type=int, default=480)
  args = parser.parse_args()
  args.skip = {"big_buck_bunny_0_30.webm": 240}     # past the fade-in and titles, to a cut
  from colorjax import inference
  colorizer = inference.load(args.workdir)
  print(f"model: {args.workdir} (step {colorizer.step}, render size {colorizer.render_size})")
  for name, fn in (("stability", stability), ("speed", speed), ("long", long_run)):
    if args.only in (None, name):
      fn(colorizer, args)
      print()


if __name__ == "__main__":
  main()
