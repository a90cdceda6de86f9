"""Colorize throughput on this machine: images/s and megapixels/s for `Colorizer.many`.

  .venv/bin/python benchmarks/colorize.py                       # demo model, synthetic frames
  .venv/bin/python benchmarks/colorize.py --config=configs/default.py --num_images=16
  .venv/bin/python benchmarks/colorize.py --input=/path/to/frames --workdir=runs/demo

Without --workdir, a checkpoint of the chosen config with random (He-normal) weights is
written to a temp dir: throughput does not depend on the weights' values. Without --input,
`--num_images` synthetic 1024×768 JPEG frames are generated. Timed from image files (decode
included, writing excluded): the first batch (includes compilation) and the steady state
over the remaining images (every batch full, so each bucket compiles once); then one image
per call, as the colorize command does (writing excluded).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from colorjax import xla_flags  # noqa: E402

xla_flags.apply()             # as launch.py does, before JAX starts


def synthetic_frames(folder: str, n: int, width: int = 1024, height: int = 768) -> list[str]:
  """`n` smooth, textured greyscale-ish JPEG frames of width × height."""
  rng = np.random.default_rng(0)
  yy, xx = np.mgrid[0:height, 0:width] / np.array([height, width], np.float32)[:, None, None]
  paths = []
  for i in range(n):
    phase = rng.uniform(0, 2 * np.pi, 3)
    rgb = np.stack([0.5 + 0.3 * np.sin(6 * xx + phase[0]) * np.cos(4 * yy),
                    0.5 + 0.3 * np.sin(5 * yy + phase[1]),
                    0.5 + 0.3 * np.cos(7 * (xx + yy) + phase[2])], -1)
    rgb += rng.normal(0, 0.03, rgb.shape)
    path = os.path.join(folder, f"frame_{i:03d}.jpg")
    Image.fromarray(np.uint8(np.clip(rgb, 0, 1) * 255)).save(path, quality=90)
    paths.append(path)
  return paths


def random_checkpoint(config, workdir: str) -> None:
  """A checkpoint of `config` with He-normal kernels (no training, no op-by-op init)."""
  from colorjax import checkpoints, config_lib, state
  config = config_lib.finalize(config)
  st = state.random_state(config)
  mngr = checkpoints.manager(workdir)
  checkpoints.save(mngr, 0, st, {}, config.to_json_best_effort(), {checkpoints.VAL_METRIC: 0.0})
  mngr.close()


def load_config(path: str):
  import importlib.util
  spec = importlib.util.spec_from_file_location("bench_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def rate(n_images: int, megapixels: float, seconds: float) -> str:
  return (f"{n_images / seconds:7.2f} images/s  {megapixels / seconds:7.2f} MP/s  "
          f"({n_images} images in {seconds:.2f} s)")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default=os.path.join(ROOT, "configs", "demo.py"))
  parser.add_argument("--workdir", help="a trained run to use instead of random weights")
  parser.add_argument("--input", help="a folder of images (default: synthetic 1024×768 frames)")
  parser.add_argument("--num_images", type=int, default=40)
  parser.add_argument("--batch_size", type=int, default=8)
  parser.add_argument("--render_size", type=int, default=None)
  args = parser.parse_args()

  import jax
  from colorjax import inference
  from colorjax.data import sources
  with tempfile.TemporaryDirectory() as tmp:
    if args.input:
      paths = sources.list_images(args.input)[:args.num_images]
    else:
      paths = synthetic_frames(tmp, args.num_images)
    workdir = args.workdir
    if workdir is None:
      workdir = os.path.join(tmp, "run")
      random_checkpoint(load_config(args.config), workdir)
    colorizer = inference.load(workdir, render_size=args.render_size)
    sizes = [Image.open(p).size for p in paths]
    mp = [w * h / 1e6 for w, h in sizes]
    c = colorizer.config
    print(f"device: {jax.devices()[0].device_kind} ×{jax.device_count()} ({os.cpu_count()} CPUs); "
          f"model {c.model.encoder} width {c.model.encoder_width}, render_size "
          f"{colorizer.render_size}; {len(paths)} images, mean {np.mean(mp):.2f} MP "
          f"(first {sizes[0][0]}×{sizes[0][1]}); batch_size {args.batch_size}")

    b = args.batch_size
    t0 = time.perf_counter()
    colorizer.many(paths[:b], batch_size=b)
    first = time.perf_counter() - t0
    print(f"first batch (with compile): {rate(len(paths[:b]), sum(mp[:b]), first)}")
    rest = paths[b:]
    if rest:
      t0 = time.perf_counter()
      for i in range(0, len(rest), b):
        colorizer.many(rest[i:i + b], batch_size=b)
      steady = time.perf_counter() - t0
      print(f"steady state (decode + colorize): {rate(len(rest), sum(mp[b:]), steady)}")
      arrays = [inference.prepare(p) for p in rest]      # decoded, L* computed
      t0 = time.perf_counter()
      for i in range(0, len(arrays), b):
        colorizer.many(arrays[i:i + b], batch_size=b)
      model = time.perf_counter() - t0
      print(f"steady state (predecoded L*):     {rate(len(rest), sum(mp[b:]), model)}")
      colorizer(paths[0])                                 # compile batch 1
      t0 = time.perf_counter()
      for p in rest:
        colorizer(p)
      single = time.perf_counter() - t0
      print(f"one at a time, as --mode=colorize: {rate(len(rest), sum(mp[b:]), single)}")
    print(f"compiled shapes: {colorizer.compiled_shapes}")


if __name__ == "__main__":
  main()
