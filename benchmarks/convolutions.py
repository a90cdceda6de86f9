"""Convolution times by XLA:CPU path: the model's layer shapes, forward, input gradient and
weight gradient, under stock XLA flags and under colorjax's (colorjax/xla_flags.py).

Each flag set runs in its own process (XLA reads XLA_FLAGS once); the table puts them side by
side with the ratio. Times are medians of --repeats jitted calls after a warm-up.

  python benchmarks/convolutions.py --batch 8 --size 128

--census instead compiles the full D+G training step (as benchmarks/train_step.py does, with
colorjax's flags), takes every convolution XLA left in it, times each one alone on random data
and prints the slowest, the totals by layer and kind, and their sum: the time the step would
take if it did nothing but its convolutions, each as fast as it runs alone.

  python benchmarks/convolutions.py --census --batch 16 --size 256
"""
from __future__ import annotations

import argparse
import json
import os
import re
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


_CONV = re.compile(r"\n\s*(%[\w.\-]+) = (\w+\[[\d,]*\])\S* convolution\((%[\w.\-]+), "
                   r"(%[\w.\-]+)\), window=\{([^}]*)\}, dim_labels=(\w+)_(\w+)->(\w+)(.*)")
_DEF = re.compile(r"\n\s*(%[\w.\-]+) = (\w+\[[\d,]*\])")
_SPEC = {"b": "N", "f": "C", "i": "I", "o": "O", "0": "H", "1": "W"}


def _dims(shape: str) -> tuple:
  return tuple(int(v) for v in shape[shape.index("[") + 1:-1].split(",") if v)


def _window(text: str) -> dict:
  """Keyword arguments of lax.conv_general_dilated from an HLO `window={...}` attribute."""
  w = dict(kv.split("=") for kv in text.split())
  ints = lambda key, default: tuple(int(v) for v in w[key].split("x")) if key in w else default
  size = ints("size", ())
  pad = [tuple(int(p) for p in v.split("_")) for v in w["pad"].split("x")] if "pad" in w else None
  return dict(size=size, window_strides=ints("stride", (1,) * len(size)),
              padding=pad or [(0, 0)] * len(size), lhs_dilation=ints("lhs_dilate", None),
              rhs_dilation=ints("rhs_dilate", None))


def _layer(rest: str) -> tuple[str, str]:
  """(layer path, 'forward' or 'backward') from an instruction's op_name metadata."""
  m = re.search(r'op_name="([^"]+)"', rest)
  if not m:
    return "(no metadata)", "backward"
  parts = [p for p in m.group(1).split("/")[1:] if not p.startswith("conv_general")]
  kind = "backward" if any(p.startswith("transpose(") for p in parts) else "forward"
  parts = [re.sub(r"^(?:transpose\()?(?:jvp\()?(\w+)\)*$", r"\1", p) for p in parts]
  return "/".join(parts), kind


def census(batch: int, size: int, repeats: int, top: int) -> None:
  sys.path.insert(0, ROOT)
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
  from colorjax import xla_flags
  xla_flags.apply()
  import collections

  import jax
  import numpy as np
  from train_step import _op_kinds, compiled_step
  _, compiled, _, _, _ = compiled_step(batch, size, "float32")
  hlo = compiled.as_text()
  weight_grads = {k for k, v in _op_kinds(hlo).items() if v.endswith("weight gradient")}
  shapes = dict(_DEF.findall(hlo))
  rng = np.random.default_rng(0)
  rows = []
  for name, out, lhs, rhs, window, ls, rs, os_, rest in _CONV.findall(hlo):
    kw = _window(window)
    size_ = kw.pop("size")
    groups = re.search(r"feature_group_count=(\d+)", rest)
    spec = tuple("".join(_SPEC[c] for c in x) for x in (ls, rs, os_))
    x = rng.standard_normal(_dims(shapes[lhs])).astype(np.float32)
    k = rng.standard_normal(_dims(shapes[rhs])).astype(np.float32)
    fn = jax.jit(lambda x, k, kw=kw, spec=spec, g=int(groups.group(1)) if groups else 1:
                 jax.lax.conv_general_dilated(x, k, **kw, dimension_numbers=spec,
                                              feature_group_count=g))
    x, k = jax.device_put(x), jax.device_put(k)
    jax.block_until_ready(fn(x, k))
    times = []
    for _ in range(repeats):
      t = time.perf_counter()
      jax.block_until_ready(fn(x, k))
      times.append(time.perf_counter() - t)
    ms = statistics.median(times) * 1e3
    kshape = _dims(shapes[rhs])
    flops = 2 * np.prod(_dims(out)) * np.prod(kshape) / kshape[rs.index("o")]
    layer, kind = _layer(rest)
    if name.lstrip("%") in weight_grads:
      kind = "weight gradient"
    elif kind == "backward":
      kind = "input gradient"
    rows.append((ms, flops / ms / 1e6, layer, kind, shapes[lhs], shapes[rhs], out, "x".join(
        map(str, size_))))
  total = sum(r[0] for r in rows)
  print(f"{len(rows)} convolutions in the compiled step (batch {batch}, {size} px, float32), "
        f"each timed alone, median of {repeats}; XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
  print(f"{'ms':>8} {'GFLOP/s':>8}  {'kind':15} {'layer':34} lhs, rhs -> out (window)")
  for ms, gf, layer, kind, a, b, out, win in sorted(rows, reverse=True)[:top]:
    print(f"{ms:8.1f} {gf:8.0f}  {kind:15} {layer[:34]:34} {a}, {b} -> {out} ({win})")
  for title, key in (("by kind", lambda r: r[3]),
                     ("by network", lambda r: r[2].split("/")[0] or "?")):
    sums = collections.Counter()
    for r in rows:
      sums[key(r)] += r[0]
    print(f"{title}: " + "; ".join(f"{k} {v / 1e3:.2f} s" for k, v in sums.most_common()))
  print(f"sum of all convolutions: {total / 1e3:.2f} s per step "
        f"(compare the whole step: benchmarks/train_step.py --batch {batch} --size {size})")


def main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--batch", type=int, default=8)
  p.add_argument("--size", type=int, default=128)
  p.add_argument("--repeats", type=int, default=5)
  p.add_argument("--census", action="store_true",
                 help="time every convolution of the compiled training step instead")
  p.add_argument("--top", type=int, default=15, help="--census: slowest convolutions to list")
  p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
  args = p.parse_args(argv)
  if args.census:
    census(args.batch, args.size, args.repeats, args.top)
    return
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
