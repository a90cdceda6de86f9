"""Quantised a*b* colours for the classification head (Zhang, Isola & Efros 2016).

The a*b* plane is cut into 10×10-unit cells centred on multiples of 10; the bins are the cells
that hold some sRGB colour at some lightness. They are computed here, not copied from the
paper: every face of the RGB cube (513 levels per edge) plus a 33³ grid of its inside is
converted with `colorjax.color.rgb_to_lab` and the cells that are hit are kept. That gives
`len(centers()) == 262` bins (sRGB, D65), not the paper's 313: Zhang et al. counted the
cells hit by ImageNet's pixels, which reach a few cells past the sRGB gamut through the
rounding of 8-bit JPEG YCbCr → RGB in their conversion; a*b* of any sRGB image lies inside
the 262 cells here (every in-gamut a*b* is within half a cell diagonal, 5·√2, of a centre;
`tests/test_vivid.py` checks it on fresh samples).

Everything a pixel needs, for a*b* in Lab units (a, b ≈ −110…110):

* soft encoding (the training target): the `SOFT_NEIGHBOURS` = 5 nearest centres c_k weighted
  by exp(−|ab − c_k|² / 2σ²), σ = `SOFT_SIGMA` = 5, normalised to sum 1 (`soft_encode`, over
  all K centres; `soft_encode_local`, the same over the 5×5 cells around the pixel, which hold
  the 5 nearest for every sRGB colour, at a fifth of the cost on a CPU);
* class rebalancing: with p̃ the empirical bin prior smoothed by a Gaussian of σ = 5 over the
  a*b* plane, w_q ∝ ((1 − λ) p̃_q + λ / K)⁻¹, λ = 0.5, scaled so that Σ_q p̃_q w_q = 1 (mean 1
  under the prior); a pixel's weight is w of its nearest bin;
* annealed-mean decoding: H_T(z) = Σ_q c_q · softmax(log z / T)_q, T = 0.38, which is the
  expectation of the predicted distribution z at T = 1 and its mode as T → 0.

JAX functions (`soft_encode`, `soft_encode_local`, `annealed_mean`) are jittable; the prior is
NumPy (computed once per run from its training images, see `prior_from_records`) and enters
the step as a constant.
"""
from __future__ import annotations

import functools
import json
import logging
import os
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from colorjax import color

GRID = 10.0            # a*b* cell size, Lab units
SOFT_NEIGHBOURS = 5    # centres in a soft-encoded target
SOFT_SIGMA = 5.0       # Gaussian σ of the soft encoding, Lab units
PRIOR_SIGMA = 5.0      # Gaussian σ smoothing the class prior over the a*b* plane, Lab units
REBALANCE_LAMBDA = 0.5  # mix of the smoothed prior with the uniform distribution
TEMPERATURE = 0.38     # annealed-mean temperature
PRIOR_FILE = "ab_prior.json"   # in a run's workdir
PRIOR_MAX_IMAGES = 256         # training images read for the prior (evenly spaced subset)
WINDOW = 2             # soft_encode_local: candidate cells within ±WINDOW of the pixel's cell
_FACE_LEVELS = 513
_INSIDE_LEVELS = 33


def _gamut_samples() -> np.ndarray:
  """sRGB samples [N, 3] in [0, 1]: all six faces of the cube densely, the inside coarsely."""
  t = np.linspace(0.0, 1.0, _FACE_LEVELS)
  u, v = (x.ravel() for x in np.meshgrid(t, t, indexing="ij"))
  faces = []
  for axis in range(3):
    for value in (0.0, 1.0):
      face = np.empty((u.size, 3))
      face[:, axis] = value
      face[:, [i for i in range(3) if i != axis]] = np.stack([u, v], axis=1)
      faces.append(face)
  g = np.linspace(0.0, 1.0, _INSIDE_LEVELS)
  inside = np.stack(np.meshgrid(g, g, g, indexing="ij"), axis=-1).reshape(-1, 3)
  return np.concatenate(faces + [inside])


@functools.lru_cache(maxsize=None)
def _centers_tuple() -> tuple:
  ab = color.rgb_to_lab(_gamut_samples())[:, 1:]
  cells = np.unique(np.round(ab / GRID).astype(np.int64), axis=0)   # sorted by (a, b)
  return tuple(map(tuple, (cells * GRID).tolist()))


def centers() -> np.ndarray:
  """The in-gamut bin centres [K, 2] (a*, b* in Lab units, multiples of 10), sorted by (a, b)."""
  return np.asarray(_centers_tuple(), np.float32)


def num_bins() -> int:
  """K, the number of in-gamut bins (the classification head's width)."""
  return len(_centers_tuple())


def _sq_dist(ab: jax.Array, c: jax.Array) -> jax.Array:
  """|ab − c|² for ab [..., 2] and centres [K, 2] → [..., K], written out (no matmul: exact)."""
  da = ab[..., :1] - c[:, 0]
  db = ab[..., 1:] - c[:, 1]
  return da * da + db * db


def soft_encode(ab: jax.Array, k: int = SOFT_NEIGHBOURS,
                sigma: float = SOFT_SIGMA) -> tuple[jax.Array, jax.Array]:
  """Soft-encoded targets of a*b* [..., 2] (Lab units) → (z [..., K] float32, nearest bin
  [...] int32): z_q ∝ exp(−|ab − c_q|² / 2σ²) on the k nearest centres, 0 elsewhere, sum 1.
  Centres tied at the k-th distance are all kept (a*b* = 0, black: the centre and its 4
  neighbours).
  """
  ab = jnp.asarray(ab, jnp.float32)
  d2 = _sq_dist(ab, jnp.asarray(centers()))
  z = _gaussian_weights(d2, _kth_smallest(d2, k), sigma)
  return z, jnp.argmin(d2, axis=-1).astype(jnp.int32)


def _kth_smallest(d2: jax.Array, k: int) -> jax.Array:
  """The k-th smallest of d2 [..., N] along its last axis, ties counted ([..., 1]): k − 1
  rounds of "smallest above the last" that stop once k values are at or below it (lax.top_k
  sorts and costs ~40× more on XLA:CPU)."""
  kth = jnp.min(d2, axis=-1, keepdims=True)
  for _ in range(k - 1):
    enough = jnp.sum(d2 <= kth, axis=-1, keepdims=True) >= k
    above = jnp.min(jnp.where(d2 > kth, d2, jnp.inf), axis=-1, keepdims=True)
    kth = jnp.where(enough, kth, above)
  return kth


def _gaussian_weights(d2: jax.Array, kth: jax.Array, sigma: float) -> jax.Array:
  """exp(−d2 / 2σ²) where d2 [..., N] ≤ kth [..., 1], 0 elsewhere, normalised to sum 1 along
  the last axis."""
  nearest = jnp.min(d2, axis=-1, keepdims=True)
  # Distances relative to the nearest before exp: same ratios, no underflow far from the gamut.
  z = jnp.where(d2 <= kth, jnp.exp((nearest - d2) / (2.0 * sigma * sigma)), 0.0)
  return z / z.sum(axis=-1, keepdims=True)


def soft_encode_local(ab: jax.Array, k: int = SOFT_NEIGHBOURS, sigma: float = SOFT_SIGMA
                      ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
  """`soft_encode` over the (2·WINDOW + 1)² = 25 cells around each pixel's own cell instead of
  all K bins: ab [..., 2] (Lab units) → (bins [..., 25] int32, z [..., 25] float32 summing to
  1 over them, nearest bin [...] int32, exact [] bool).

  Out-of-gamut cells in the window get z = 0 (and bin index 0). The result equals
  `soft_encode`'s wherever no centre outside the window is as near as the k-th nearest inside
  it, which `exact` checks for every pixel (a centre outside lies at least 10·WINDOW + 5 units
  away; for sRGB colours the 5th nearest is at most 18.5). Callers fall back to `soft_encode`
  when it is False. Window cells are in (a, b) order, as the bins are, so ties at the nearest
  resolve to the same bin as `soft_encode`'s argmin.
  """
  ab = jnp.asarray(ab, jnp.float32)
  table, off = _cell_table(WINDOW)
  r = np.arange(-WINDOW, WINDOW + 1)
  offsets = np.stack(np.meshgrid(r, r, indexing="ij"), -1).reshape(-1, 2)    # (a, b) order
  cell = jnp.round(ab / GRID).astype(jnp.int32)
  cand = jnp.clip(cell[..., None, :] + offsets, -off, off)                   # [..., 25, 2]
  bins = jnp.asarray(table, jnp.int32)[cand[..., 0] + off, cand[..., 1] + off]
  d = ab[..., None, :] - cand.astype(jnp.float32) * GRID
  d2 = jnp.where(bins >= 0, d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1], jnp.inf)
  first = jnp.take_along_axis(bins, jnp.argmin(d2, axis=-1)[..., None], axis=-1)[..., 0]
  # The nearest point of a cell outside the window, per pixel.
  outside = jnp.minimum((cell + WINDOW + 1) * GRID - ab, ab - (cell - WINDOW - 1) * GRID).min(-1)
  kth = _kth_smallest(d2, k)
  exact = jnp.all(kth[..., 0] < outside * outside)
  return jnp.maximum(bins, 0), _gaussian_weights(d2, kth, sigma), first, exact


def annealed_mean(logits: jax.Array, temperature: float = TEMPERATURE) -> jax.Array:
  """Annealed-mean a*b* [..., 2] in Lab units from bin logits [..., K].

  H_T = Σ_q c_q softmax(logits / T)_q: softmax(log z / T) renormalises z^(1/T), and log z
  differs from the logits by a constant per pixel. T = 1: the mean of z; T → 0: its mode.
  Computed in float32 whatever the logits' dtype.
  """
  p = jax.nn.softmax(jnp.asarray(logits, jnp.float32) / temperature, axis=-1)
  # HIGHEST: exact float32 on accelerators too (no bf16/TF32 matmul passes).
  return jnp.einsum("...k,kc->...c", p, jnp.asarray(centers()),
                    precision=jax.lax.Precision.HIGHEST)


# ---------------------------------------------------------------------------------------------
# The class prior and rebalancing weights (NumPy; computed once per run)
# ---------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _cell_table(pad: int = 0) -> tuple[np.ndarray, int]:
  """Grid cell → bin index (-1 outside the gamut) over a square of cells with at least
  `pad` + 1 empty rings around the gamut's, and its offset."""
  cells = np.round(centers() / GRID).astype(np.int64)
  off = int(np.abs(cells).max()) + 1 + pad
  table = np.full((2 * off + 1, 2 * off + 1), -1, np.int64)
  table[cells[:, 0] + off, cells[:, 1] + off] = np.arange(len(cells))
  return table, off


def nearest_bin(ab: np.ndarray) -> np.ndarray:
  """Index of the nearest bin centre for a*b* [..., 2] (Lab units, NumPy) → int [...]."""
  ab = np.asarray(ab, np.float64)
  table, off = _cell_table()
  cell = np.clip(np.round(ab / GRID).astype(np.int64) + off, 0, table.shape[0] - 1)
  idx = table[cell[..., 0], cell[..., 1]]
  miss = idx < 0                     # outside the gamut's cells: search all centres
  if miss.any():
    c = centers().astype(np.float64)
    d2 = ((ab[miss][:, None, :] - c[None]) ** 2).sum(-1)
    idx[miss] = d2.argmin(-1)
  return idx


def smooth_prior(prior: np.ndarray, sigma: float = PRIOR_SIGMA) -> np.ndarray:
  """The bin prior [K] smoothed by a Gaussian of σ (Lab units) over the a*b* plane, sum 1."""
  c = centers().astype(np.float64)
  kernel = np.exp(-((c[:, None, :] - c[None]) ** 2).sum(-1) / (2.0 * sigma * sigma))
  out = kernel @ np.asarray(prior, np.float64)
  return out / out.sum()


def rebalance_weights(prior: np.ndarray, lam: float = REBALANCE_LAMBDA,
                      sigma: float = PRIOR_SIGMA) -> np.ndarray:
  """Class weights w [K] float32: w ∝ ((1 − λ) p̃ + λ / K)⁻¹ with p̃ = smooth_prior(prior, σ),
  normalised so that Σ_q p̃_q w_q = 1. λ = 1 gives uniform weights (no rebalancing); λ = 0
  weights each bin by 1 / p̃ (rare colours dominate)."""
  p = smooth_prior(prior, sigma)
  w = 1.0 / ((1.0 - lam) * p + lam / p.size)
  return (w / (p * w).sum()).astype(np.float32)


def prior_from_records(records: Sequence, image_size: int,
                       max_images: int = PRIOR_MAX_IMAGES) -> tuple[np.ndarray, int, int]:
  """Empirical bin prior [K] (float64, sum 1) of training records: every pixel of the centre
  crops (no augmentation) of an evenly spaced subset of at most `max_images`, grey and
  unreadable images skipped as training does. Returns (prior, images used, pixels)."""
  from colorjax.data import decode
  records = list(records)
  if len(records) > max_images:
    records = [records[int(i)] for i in np.linspace(0, len(records) - 1, max_images)]
  counts = np.zeros(num_bins(), np.float64)
  used = 0
  for record in records:
    example = decode.load_example(record, image_size, None, skip_grey=True)
    if "bad" in example:
      continue
    ab = color.denormalize_ab(example["ab"].reshape(-1, 2).astype(np.float64))
    counts += np.bincount(nearest_bin(ab), minlength=counts.size)
    used += 1
  total = counts.sum()
  if not total:
    raise ValueError("no usable training image to compute the a*b* class prior from")
  return counts / total, used, int(total)


def load_or_compute_prior(workdir: str, records: Sequence, image_size: int) -> np.ndarray:
  """The run's class prior [K]: read from `workdir/ab_prior.json` if there (a resume reuses
  it), else computed from `records` once and written there (temporary name, then rename)."""
  path = os.path.join(workdir, PRIOR_FILE)
  if os.path.exists(path):
    with open(path) as f:
      stored = json.load(f)
    prior = np.asarray(stored["prior"], np.float64)
    if prior.shape != (num_bins(),):
      raise ValueError(f"{path}: {prior.size} bins, but this colorjax has {num_bins()} "
                       "(delete the file to recompute it)")
    return prior
  prior, images, pixels = prior_from_records(records, image_size)
  logging.warning("a*b* class prior: %d bins from %d pixels of %d training images -> %s",
                  prior.size, pixels, images, path)
  if jax.process_index() == 0:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
      json.dump({"bins": int(prior.size), "grid": GRID, "images": images, "pixels": pixels,
                 "centers": centers().tolist(), "prior": prior.tolist()}, f)
    os.replace(tmp, path)
  return prior
