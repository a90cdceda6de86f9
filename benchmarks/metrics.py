"""Throughput of colorjax.metrics vs scikit-image (and colour-science if installed).

    python benchmarks/metrics.py [--pixels 1000000] [--repeats 5] [--ssim-batch 16]

ΔE00: megapixels/s (one Lab pair per pixel) of jitted ``ciede2000`` in float32
and float64 against ``skimage.color.deltaE_ciede2000`` (float64, its usual input,
and float32) and ``colour.delta_E(..., method="CIE 2000")``, all on the same Lab
arrays.  SSIM: images/s on a batch of 256×256×3 images, ``colorjax.metrics.ssim``
(jitted, float32) vs ``skimage.metrics.structural_similarity`` with the same
settings (float64 and float32 inputs).  Timings are the median of ``--repeats``
runs after a warm-up; JAX results are ``block_until_ready``-ed.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from skimage.color import deltaE_ciede2000
from skimage.metrics import structural_similarity

from colorjax import metrics


def _median_times(fns, repeats):
  """Median wall time of each callable; one warm-up (compilation) each, then the
  timed runs interleaved round-robin so that changes in machine load hit all
  candidates alike."""
  for fn in fns.values():
    fn()
  times = {name: [] for name in fns}
  for _ in range(repeats):
    for name, fn in fns.items():
      t0 = time.perf_counter()
      fn()
      times[name].append(time.perf_counter() - t0)
  return {name: statistics.median(t) for name, t in times.items()}


def _report(rows, rate, skimage, ours, label, goal):
  """Prints each candidate's rate and its ratio to `skimage` float64, then ours against
  skimage's float64 and float32 runs."""
  base = rows[f"{skimage} float64"]
  for name, t in rows.items():
    print(f"  {name:42s} {rate(t)}   {base / t:7.1f}x skimage-f64")
  best = rows[ours]
  print(f"  -> {label} vs skimage float64: {base / best:.1f}x; vs skimage float32: "
        f"{rows[f'{skimage} float32'] / best:.1f}x (goal >= {goal}x)")


def _random_lab(rng, n):
  return np.stack([rng.uniform(0, 100, n), rng.uniform(-110, 110, n),
                   rng.uniform(-110, 110, n)], axis=-1)


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--pixels", type=int, default=1_000_000, help="Lab pairs for ΔE00")
  parser.add_argument("--repeats", type=int, default=5, help="timed runs (median reported)")
  parser.add_argument("--ssim-batch", type=int, default=16, help="256x256x3 images for SSIM")
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()

  print(f"jax {jax.__version__}  devices: {jax.devices()}  CPU count: {os.cpu_count()}"
        f"  (usable: {len(os.sched_getaffinity(0))})")
  try:
    print(f"load average: {os.getloadavg()}")
  except OSError:
    pass
  rng = np.random.default_rng(args.seed)

  # ---------------------------------------------------------------- ΔE00
  n = args.pixels
  lab1, lab2 = _random_lab(rng, n), _random_lab(rng, n)
  lab1_32, lab2_32 = lab1.astype(np.float32), lab2.astype(np.float32)
  print(f"\nCIEDE2000 on {n:,} random Lab pairs (megapixels/s, median of {args.repeats}):")
  fns = {}
  fns["skimage deltaE_ciede2000 float64"] = lambda: deltaE_ciede2000(lab1, lab2)
  fns["skimage deltaE_ciede2000 float32"] = lambda: deltaE_ciede2000(lab1_32, lab2_32)
  try:
    import warnings

    import colour  # colour-science
    warnings.filterwarnings("ignore", module="colour")
    fns["colour-science delta_E CIE 2000 float64"] = (
        lambda: colour.delta_E(lab1, lab2, method="CIE 2000"))
  except ImportError:
    print("  (colour-science not installed: skipped)")
  f = jax.jit(metrics.ciede2000)
  j1, j2 = jnp.asarray(lab1_32), jnp.asarray(lab2_32)
  fns["colorjax ciede2000 (jit) float32"] = lambda: f(j1, j2).block_until_ready()
  with jax.enable_x64(True):
    f64 = jax.jit(metrics.ciede2000)
    k1, k2 = jnp.asarray(lab1), jnp.asarray(lab2)
    f64(k1, k2).block_until_ready()            # compile under x64

  def run64():
    with jax.enable_x64(True):
      f64(k1, k2).block_until_ready()
  fns["colorjax ciede2000 (jit) float64"] = run64
  _report(_median_times(fns, args.repeats), lambda t: f"{n / t / 1e6:9.2f} Mpx/s",
          "skimage deltaE_ciede2000", "colorjax ciede2000 (jit) float32", "colorjax float32", 20)

  # ---------------------------------------------------------------- SSIM
  nb = args.ssim_batch
  x = rng.random((nb, 256, 256, 3))
  y = np.clip(x + 0.1 * rng.standard_normal(x.shape), 0.0, 1.0)
  x32, y32 = x.astype(np.float32), y.astype(np.float32)
  sk_kw = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
               data_range=1.0, channel_axis=-1)
  print(f"\nSSIM on a batch of {nb} 256x256x3 images (images/s, median of {args.repeats}):")
  sfns = {}
  sfns["skimage structural_similarity float64"] = (
      lambda: [structural_similarity(y[i], x[i], **sk_kw) for i in range(nb)])
  sfns["skimage structural_similarity float32"] = (
      lambda: [structural_similarity(y32[i], x32[i], **sk_kw) for i in range(nb)])
  g = jax.jit(metrics.ssim)
  xj, yj = jnp.asarray(x32), jnp.asarray(y32)
  sfns["colorjax ssim (jit) float32"] = lambda: g(xj, yj).block_until_ready()
  import dm_pix
  h = jax.jit(dm_pix.ssim)
  sfns["dm_pix.ssim (jit) float32, for reference"] = lambda: h(xj, yj).block_until_ready()
  _report(_median_times(sfns, args.repeats), lambda t: f"{nb / t:9.1f} img/s",
          "skimage structural_similarity", "colorjax ssim (jit) float32", "colorjax", 5)
  err = np.abs(np.asarray(g(xj, yj)) - np.array(
      [structural_similarity(y[i], x[i], **sk_kw) for i in range(nb)])).max()
  print(f"  max |colorjax - skimage| SSIM on this batch: {err:.2e}")


if __name__ == "__main__":
  main()
