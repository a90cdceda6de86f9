"""Convolution times by XLA:CPU path: the model's layer shapes, forward, input gradient and
weight gradient, under stock XLA flags and under colorjax's (colorjax/xla_flags.py).

Each flag set runs in its own process (XLA reads XLA_FLAGS once); the table puts them side by
side with the ratio. Times are medians of --repeats jitted calls after a warm-up.

  python benchmarks/convolutions.py --batch 8 --size 128
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def layer_shapes(size: int) -> list[tuple]:
  """(name, H_in, C_in, C_out, kernel, stride, padding) of representative convolutions of the
  ResNet34-UNet generator and the 70×70 PatchGAN at `size` px input."""
  s = size
  return [
      ("G stem 7x7/2", s, 1, 64, 7, 2, 3),
      ("G layer1 3x3", s // 4, 64, 64, 3, 1, 1),
      ("G layer2 3x3/2", s // 4, 64, 128, 3, 2, 1),
      ("G layer2 3x3", s // 8, 128, 128, 3, 1, 1),
      ("G layer3 3x3", s // 16, 256, 256, 3, 1, 1),
      ("G layer4 3x3", s // 32, 512, 512, 3, 1, 1),
      ("G decoder 3x3 (1/2 res)", s // 2, 128, 32, 3, 1, 1),
      ("G decoder 3x3 (full res)", s, 32, 16, 3, 1, 1),
      ("D 4x4/2", s, 3, 64, 4, 2, 1),
      ("D 4x4/2 (2nd)", s // 4, 128, 256, 4, 2, 1),
      ("D 4x4/1", s // 8, 256, 512, 4, 1, 1),
  ]


def worker(batch: int, size: int, repeats: int) -> dict:
  import jax
  import jax.numpy as jnp
  import numpy as np

  def timed(fn, *args):
    jax.block_until_ready(fn(*args))
    ts = []
    for _ in range(repeats):
      t = time.perf_counter()
      jax.block_until_ready(fn(*args))
      ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e3

  rng = np.random.default_rng(0)
  out = {}
  for name, h, cin, cout, k, stride, pad in layer_shapes(size):
    x = jnp.asarray(rng.standard_normal((batch, h, h, cin), np.float32))
    w = jnp.asarray(rng.standard_normal((k, k, cin, cout), np.float32))

    def conv(x, w, stride=stride, pad=pad):
      return jax.lax.conv_general_dilated(x, w, (stride, stride), ((pad, pad), (pad, pad)),
                                          dimension_numbers=("NHWC", "HWIO", "NHWC"))
    g = jnp.ones_like(conv(x, w))
    out[name] = [
        timed(jax.jit(conv), x, w),
        timed(jax.jit(lambda g, w: jax.vjp(lambda x: conv(x, w), x)[1](g)[0]), g, w),
        timed(jax.jit(lambda g, x: jax.vjp(lambda w: conv(x, w), w)[1](g)[0]), g, x)]
  return out


def main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--batch", type=int, default=8)
  p.add_argument("--size", type=int, default=128)
  p.add_argument("--repeats", type=int, default=5)
  p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
  args = p.parse_args(argv)
  if args.worker:
    print(json.dumps(worker(args.batch, args.size, args.repeats)))
    return
  sys.path.insert(0, ROOT)
  from colorjax import xla_flags
  stock = os.environ.get("XLA_FLAGS", "")
  tuned = xla_flags.with_cpu_flags(stock, xla_flags.jaxlib_version())
  if tuned == stock:
    print("colorjax sets no XLA flag for this jaxlib: nothing to compare")
  runs = {}
  for label, flags in (("stock", stock), ("colorjax", tuned)):
    env = {**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"}
    res = subprocess.run([sys.executable, __file__, "--worker", f"--batch={args.batch}",
                          f"--size={args.size}", f"--repeats={args.repeats}"],
                         env=env, capture_output=True, text=True, check=True)
    runs[label] = json.loads(res.stdout.strip().splitlines()[-1])
  print(f"batch {args.batch}, {args.size} px input, float32; ms per call, median of "
        f"{args.repeats}\nstock XLA_FLAGS={stock!r}; colorjax XLA_FLAGS={tuned!r}")
  kinds = ("forward", "input grad", "weight grad")
  print(f"{'layer':26s} " + "  ".join(f"{k + ' stock/colorjax':>26s}" for k in kinds))
  totals = [[0.0, 0.0] for _ in kinds]
  for name in runs["stock"]:
    cells = []
    for i in range(3):
      a, b = runs["stock"][name][i], runs["colorjax"][name][i]
      totals[i][0] += a
      totals[i][1] += b
      cells.append(f"{a:8.2f} /{b:8.2f} ({a / b:4.1f}x)")
    print(f"{name:26s} " + "  ".join(f"{c:>26s}" for c in cells))
  print(f"{'total':26s} " + "  ".join(f"{f'{a:8.1f} /{b:8.1f} ({a / b:4.1f}x)':>26s}"
                                      for a, b in totals))


if __name__ == "__main__":
  main()
