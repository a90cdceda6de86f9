"""Input-pipeline throughput: images/s at 256 px from a folder of JPEGs, per grain worker count.

Reads through `colorjax.data.pipeline.train_dataset` exactly as training does (decode, EXIF,
random crop/flip, Lab conversion, batching; worker processes when workers > 0). The folder is
--folder, else /work/shared/data (photos + animation) when present, else ~200 synthetic
1024×768 JPEGs written to a temporary directory.

  python benchmarks/pipeline.py --workers 0 1 2 4 --batches 16
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time

import numpy as np

SHARED = "/work/shared/data"


def synthetic_jpegs(folder: str, n: int = 200, size=(1024, 768)) -> list[str]:
  """`n` smooth colour JPEGs (quality 90) of `size` (w, h) px with some texture."""
  from PIL import Image
  rng = np.random.default_rng(0)
  w, h = size
  yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
  paths = []
  for i in range(n):
    f = rng.uniform(0.002, 0.02, 3)
    img = np.stack([np.sin(xx * f[c] + yy * f[(c + 1) % 3] + i) for c in range(3)], -1)
    img = (img * 90 + 128 + rng.normal(0, 8, (h, w, 3))).clip(0, 255).astype(np.uint8)
    path = os.path.join(folder, f"img{i:04d}.jpg")
    Image.fromarray(img).save(path, quality=90)
    paths.append(path)
  return paths


def measure(records, size: int, batch: int, workers: int, batches: int) -> tuple[float, float]:
  """(images/s over `batches` batches after the first, seconds to the first batch)."""
  from colorjax.data import pipeline
  t0 = time.perf_counter()
  with contextlib.closing(iter(pipeline.train_dataset([records], size, batch, seed=0,
                                                      workers=workers))) as it:
    next(it)
    first = time.perf_counter() - t0
    t = time.perf_counter()
    for _ in range(batches):
      b = next(it)
      assert b["L"].shape == (batch, size, size, 1)
    return batches * batch / (time.perf_counter() - t), first


def main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--folder", default="")
  p.add_argument("--synthetic", action="store_true", help="use synthetic JPEGs even if shared")
  p.add_argument("--size", type=int, default=256)
  p.add_argument("--batch", type=int, default=16)
  p.add_argument("--batches", type=int, default=16, help="timed batches per worker count")
  p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2, 4])
  args = p.parse_args(argv)
  from colorjax.data import sources

  tmp = None
  if args.folder:
    paths, what = sources.list_images(args.folder), args.folder
  elif not args.synthetic and os.path.isdir(os.path.join(SHARED, "photos")):
    paths = (sources.list_images(os.path.join(SHARED, "photos"))
             + sources.list_images(os.path.join(SHARED, "animation")))
    what = f"{SHARED} photos + animation"
  else:
    tmp = tempfile.TemporaryDirectory()
    paths, what = synthetic_jpegs(tmp.name), "200 synthetic 1024×768 JPEGs"
  records = [("file", p) for p in paths]
  print(f"{len(records)} images from {what}; {args.size} px crops, batch {args.batch}, "
        f"{os.cpu_count()} CPUs")
  print(f"{'workers':>7} {'images/s':>9} {'first batch s':>14}")
  for w in args.workers:
    ips, first = measure(records, args.size, args.batch, w, args.batches)
    print(f"{w:7d} {ips:9.1f} {first:14.2f}", flush=True)
  if tmp:
    tmp.cleanup()


if __name__ == "__main__":
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  main()
