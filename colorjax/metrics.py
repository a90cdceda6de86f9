"""Colour-difference and image-quality metrics, in JAX.

* :func:`ciede2000` -- CIEDE2000 colour difference (Sharma, Wu & Dalal 2005,
  "The CIEDE2000 color-difference formula: implementation notes, supplementary
  test data, and mathematical observations", Color Res. Appl. 30(1)), written in
  ``jax.numpy``: elementwise, jittable, vmappable, differentiable everywhere.
* Per-image batch metrics on NHWC sRGB images in ``[0, 1]``: :func:`delta_e`,
  :func:`ssim`, :func:`psnr`, :func:`colorfulness`, and :func:`image_metrics`
  (all of them, one jitted call).
* Temporal stability of a frame sequence: :func:`warp_error` (Lai et al. 2018) and
  :func:`cdc` (Liu et al. 2021).  Optical flow is an input here (these functions stay
  pure jnp); ``colorjax.temporal.sequence_flows`` estimates it with OpenCV.
"""
from __future__ import annotations

import functools
import math

import dm_pix
import jax
import jax.numpy as jnp

from colorjax import color

__all__ = ["ciede2000", "delta_e", "ssim", "psnr", "colorfulness", "image_metrics",
           "warp", "warp_error", "cdc"]

_TWO_PI = 2.0 * math.pi
_POW25_7 = 25.0 ** 7
_DEG = math.pi / 180.0
# cos/sin of the phase offsets of the T term: cos(h - 30°), cos(3h + 6°), cos(4h - 63°).
_C30, _S30 = math.cos(30 * _DEG), math.sin(30 * _DEG)
_C6, _S6 = math.cos(6 * _DEG), math.sin(6 * _DEG)
_C63, _S63 = math.cos(63 * _DEG), math.sin(63 * _DEG)


# ---------------------------------------------------------------------------
# Gradient-safe primitives (double-where trick).
# ---------------------------------------------------------------------------

def _safe_sqrt(x):
  """sqrt(max(x, 0)) whose gradient is 0 (not inf/nan) where x <= 0."""
  pos = x > 0
  return jnp.where(pos, jnp.sqrt(jnp.where(pos, x, 1.0)), 0.0)


def _rsqrt_newton(x):
  """1/sqrt(x) for x > 0 from multiplies and adds only (float32 and float64; other
  dtypes use lax.rsqrt).  Seed: the "fast inverse square root" bit trick
  (relative error <= 3.5e-2); each Newton step squares the error, so 3 steps
  (float32) or 4 (float64) leave only the final rounding.  Not differentiable
  (the seed is a bit cast): used on the forward pass only.

  Why: XLA counts sqrt and divide as expensive and never duplicates one into
  several fusions, so every sqrt/divide value with several users cuts an
  elementwise graph there.  In CIEDE2000 those are 1/C' (which also gives C')
  and 1/|u1 ± u2|; built from cheap operations, the whole formula is one loop
  fusion that XLA:CPU runs on all cores with no intermediate arrays."""
  bits = {jnp.dtype(jnp.float32): (jnp.int32, 0x5F375A86, 3),
          jnp.dtype(jnp.float64): (jnp.int64, 0x5FE6EB50C7B537A9, 4)}.get(x.dtype)
  if bits is None:
    return jax.lax.rsqrt(x)
  int_dtype, magic, steps = bits
  i = jax.lax.bitcast_convert_type(x, int_dtype)
  y = jax.lax.bitcast_convert_type(jnp.asarray(magic, int_dtype) - (i >> 1), x.dtype)
  half_x = 0.5 * x
  for _ in range(steps):
    y = y * (1.5 - half_x * y * y)
  return y


def _nterms(dtype, f32, f64):
  return f32 if jnp.finfo(dtype).bits <= 32 else f64


def _atan_unit(p, q, nterms, sqrt=_safe_sqrt):
  """Angle of the unit vector (p, q) in (-π, π], accurate to a few ulp except
  close to ±π (where 1 + p cancels; unused there by the caller).

  XLA:CPU lowers atan2/sin/cos to scalar libm calls (~25-90 ns each); this uses
  only +, *, / and sqrt, which vectorise: three half-angle steps
  (x, y) -> (x + |(x, y)|, y) bring the angle to (-π/8, π/8], then
  16 atan(t), |t| <= tan(π/16), by its Taylor series."""
  x = 1.0 + p                                    # angle / 2  (|(p, q)| = 1)
  for _ in range(3):                             # angle / 4, / 8, / 16
    x = x + sqrt(x * x + q * q)
  t = q * (1.0 / jnp.where(x > 0, x, 1.0))      # not q / x: see _rsqrt_newton
  z = t * t
  acc = 1.0 / (2 * nterms - 1)
  for k in range(nterms - 2, -1, -1):
    acc = acc * (-z) + 1.0 / (2 * k + 1)
  return 16.0 * t * acc


def _sin_poly(x, nterms):
  """sin(x) for |x| <= π/3 by its Taylor series (vectorises, unlike XLA:CPU sin)."""
  z = x * x
  acc = 1.0
  for k in range(nterms - 1, 0, -1):                # 1 - z/(2·3) (1 - z/(4·5) (...))
    acc = 1.0 - z / ((2 * k) * (2 * k + 1)) * acc
  return x * acc


# ---------------------------------------------------------------------------
# CIEDE2000.
# ---------------------------------------------------------------------------

_E275 = (math.cos(275 * _DEG), math.sin(275 * _DEG))


def ciede2000(lab1, lab2):
  """CIEDE2000 colour difference ΔE00 between CIE Lab colours (kL = kC = kH = 1).

  Args:
    lab1: reference colours, ``[..., 3]`` (L in [0, 100], a, b in Lab units).
    lab2: sample colours, same shape as ``lab1`` (or broadcastable to it).

  Returns:
    ``[...]`` ΔE00, same float dtype as the (promoted) inputs; integer inputs are
    computed in JAX's default float dtype.

  Implements Sharma, Wu & Dalal (2005) eqs. (1)-(17), with its corner cases:
  h' = 0 where a' = b = 0; when |h1' - h2'| > 180° the hue difference is
  wrapped by ∓360° and the mean hue shifted by ±180° (at exactly 180° neither
  happens: Δh' = h2' - h1' = ±180° and h̄' = (h1' + h2') / 2); when C1' C2' = 0,
  Δh' = 0 and the mean hue is the *sum* h1' + h2'.  These rules agree with
  ``skimage.color.deltaE_ciede2000``.

  The hue quantities are evaluated from the unit vectors u_i = (a_i', b_i) / C_i'
  instead of angles (the same numbers, without atan2/sin/cos, which XLA:CPU does
  not vectorise): the mean-hue direction is the bisector of the shorter arc
  between u1 and u2 (u1 + u2, or the perpendicular of u2 - u1 when they are more
  than 90° apart, for accuracy), ΔH' = 2 sqrt(C1'C2') sin(Δh'/2) = sqrt(C1'C2')
  · 2 (u1 × u2) / |u1 + u2| (or ± sqrt(C1'C2') |u2 - u1|), T from cos/sin of the
  mean hue by multiple-angle identities, and only the rotation term's
  (h̄' - 275°) needs an angle (polynomial atan).  Where hues are *exactly*
  opposite, the tie is broken as the paper does (h2' > h1' <=> h1' < 180°);
  skimage decides the same case from rounded atan2 values.

  The formula is symmetric in its arguments.  Gradients are finite everywhere
  (identical colours, achromatic colours, a' = b = 0): square roots and
  normalisations use the double-``where`` trick and return the zero
  sub-gradient at their non-differentiable points (ΔE = 0, C' = 0).
  """
  lab1 = jnp.asarray(lab1)
  lab2 = jnp.asarray(lab2)
  dtype = jnp.result_type(lab1, lab2)
  if not jnp.issubdtype(dtype, jnp.floating):
    dtype = jnp.result_type(float)
  lab1, lab2 = jnp.broadcast_arrays(lab1.astype(dtype), lab2.astype(dtype))
  shape = lab1.shape[:-1]
  # Channels first: the elementwise loops then read contiguous arrays.
  chans = [c for x in (lab1, lab2) for c in x.reshape(-1, 3).T]
  return _ciede2000_pixels(*chans).reshape(shape)


def _ciede2000_parts(L1, a1, b1, L2, a2, b2, sqrt=_safe_sqrt, rsqrt=jax.lax.rsqrt):
  """CIEDE2000 on the separate channels (equal shapes and float dtype).

  Written for throughput: each square root or division is taken once and shared
  (10 square roots, 3 reciprocal square roots and 5 divisions per pair).
  ``sqrt`` must return 0 for x <= 0; the default also has finite gradients there.
  ``rsqrt`` is only applied to x > 0."""
  dtype = L1.dtype

  # (2)-(7): a' from the mean CIELAB chroma, then C' and the hue direction u.
  cbar = 0.5 * (sqrt(a1 * a1 + b1 * b1) + sqrt(a2 * a2 + b2 * b2))
  c7 = _pow7(cbar)
  scale = 1.5 - 0.5 * sqrt(c7 / (c7 + _POW25_7))  # 1 + G
  a1p, a2p = a1 * scale, a2 * scale
  sq1, sq2 = a1p * a1p + b1 * b1, a2p * a2p + b2 * b2
  nz1, nz2 = sq1 > 0, sq2 > 0
  inv1 = jnp.where(nz1, rsqrt(jnp.where(nz1, sq1, 1.0)), 0.0)   # 1/C', 0 where C' = 0
  inv2 = jnp.where(nz2, rsqrt(jnp.where(nz2, sq2, 1.0)), 0.0)
  C1, C2 = sq1 * inv1, sq2 * inv2
  u1x, u1y = a1p * inv1, b1 * inv1                   # (0, 0) where C' = 0
  u2x, u2y = a2p * inv2, b2 * inv2

  # Sum and difference of the hue directions.  |s|^2 + |d|^2 = 4 when both are
  # chromatic; |s| >= |d| <=> |Δh'| <= 90°.
  sx, sy = u1x + u2x, u1y + u2y
  dx, dy = u2x - u1x, u2y - u1y
  ss, dd = sx * sx + sy * sy, dx * dx + dy * dy
  near = ss >= dd
  p1, p2 = u1x * u2y, u1y * u2x
  cross = p1 - p2                                   # sin Δh'
  # sign of Δh' (in (-180°, 180°]); at exactly 180°: + iff h1' < 180°.  Compared
  # as p1 vs p2 rather than the sign of `cross`: the compiler may contract
  # p1 - p2 into an FMA, which is not exactly 0 for exactly opposite hues.
  upper1 = (u1y > 0) | ((u1y == 0) & (u1x > 0))
  sgn = jnp.where(p1 > p2, 1.0, jnp.where(p1 < p2, -1.0, jnp.where(upper1, 1.0, -1.0)))
  # |u1 + u2| where near (>= 1 unless both achromatic), else |u2 - u1| (>= sqrt 2).
  both_zero = ~(nz1 | nz2)
  n2 = jnp.where(both_zero, 1.0, jnp.where(near, ss, dd))
  inv_n = rsqrt(n2)
  n = n2 * inv_n

  # (10): ΔH' = 2 sqrt(C1'C2') sin(Δh'/2); 0 when C1'C2' = 0 (u = 0 there).
  half_chord = jnp.where(near, 2.0 * cross * inv_n, sgn * n)   # 2 sin(Δh'/2)
  dH = sqrt(C1 * C2) * half_chord

  # (14): mean-hue direction (cos h̄', sin h̄'); (1, 0) (h̄' = 0) if both achromatic.
  ch = jnp.where(both_zero, 1.0, jnp.where(near, sx, sgn * dy) * inv_n)
  sh = jnp.where(near, sy, -sgn * dx) * inv_n

  # (15): T from cos/sin of the mean hue via multiple-angle identities.
  c2h = 2.0 * ch * ch - 1.0
  s2h = 2.0 * sh * ch
  c3h = ch * (4.0 * ch * ch - 3.0)
  s3h = sh * (3.0 - 4.0 * sh * sh)
  c4h = 2.0 * c2h * c2h - 1.0
  s4h = 2.0 * s2h * c2h
  T = (1.0
       - 0.17 * (ch * _C30 + sh * _S30)       # cos(h̄' - 30°)
       + 0.24 * c2h                           # cos(2h̄')
       + 0.32 * (c3h * _C6 - s3h * _S6)       # cos(3h̄' + 6°)
       - 0.20 * (c4h * _C63 + s4h * _S63))    # cos(4h̄' - 63°)

  # (16)-(21): weights and rotation.
  Lbar = 0.5 * (L1 + L2)
  Cbarp = 0.5 * (C1 + C2)
  lm50 = (Lbar - 50.0) ** 2
  SL = 1.0 + 0.015 * lm50 / jnp.sqrt(20.0 + lm50)
  SC = 1.0 + 0.045 * Cbarp
  SH = 1.0 + 0.015 * Cbarp * T
  cp7 = _pow7(Cbarp)
  RC = 2.0 * sqrt(cp7 / (cp7 + _POW25_7))
  # Δθ = 30° exp(-((h̄' - 275°) / 25°)^2) with h̄' in [0°, 360°).  δ = h̄' - 275° is
  # taken in (-180°, 180°], which is right for h̄' in (95°, 360°).  For h̄' in
  # [0°, 90°) (true δ in [-275°, -185°), Gaussian < 1e-22) it is set to 0; the
  # test is on the direction itself so that h̄' = 0 exactly (e.g. achromatic
  # pairs) is never taken for 360°.  In [90°, 95°] the wrapped δ gives < 1e-21.
  p = ch * _E275[0] + sh * _E275[1]                 # cos δ
  q = sh * _E275[0] - ch * _E275[1]                 # sin δ
  live = (sh < 0) | (ch <= 0)
  delta = _atan_unit(jnp.where(live, p, 1.0), jnp.where(live, q, 0.0),
                     _nterms(dtype, 6, 12), sqrt)
  gauss = jnp.where(live, jnp.exp(-(delta * (1.0 / (25.0 * _DEG))) ** 2), 0.0)
  RT = -_sin_poly((math.pi / 3) * gauss, _nterms(dtype, 6, 10)) * RC

  # ΔL'/SL, ΔC'/SC, ΔH'/SH with one division.
  inv_s = 1.0 / (SL * SC * SH)
  tL = (L2 - L1) * (SC * SH) * inv_s
  tC = (C2 - C1) * (SL * SH) * inv_s
  tH = dH * (SL * SC) * inv_s
  return sqrt(tL * tL + tC * tC + tH * tH + RT * tC * tH)


@jax.custom_jvp
def _ciede2000_pixels(L1, a1, b1, L2, a2, b2):
  """:func:`_ciede2000_parts` evaluated for speed: a plain sqrt(max(x, 0)) (the
  same values as the double-``where`` square root, both 0 for x <= 0) and
  :func:`_rsqrt_newton`.  Derivatives come from the double-``where`` version
  with lax.rsqrt, so stay finite."""
  return _ciede2000_parts(L1, a1, b1, L2, a2, b2, sqrt=lambda x: jnp.sqrt(jnp.maximum(x, 0.0)),
                          rsqrt=_rsqrt_newton)


@_ciede2000_pixels.defjvp
def _ciede2000_pixels_jvp(primals, tangents):
  return jax.jvp(_ciede2000_parts, primals, tangents)


# XLA:CPU splits an elementwise graph at every expensive value (exp, log, sqrt,
# divide) that has several users; RGB -> Lab followed by CIEDE2000 becomes ~14
# loop fusions that each stream full-size intermediates through memory, and
# running it on cache-sized blocks (lax.map) is ~2x faster there.  Other
# backends get the whole array at once.  (CIEDE2000 alone is one fusion.)
_CPU_PIXEL_BLOCK = 16384
_CPU_IMAGE_BLOCK = 2


def _blocked(fn, args, block):
  """fn over the leading axis of ``args`` in blocks of ``block`` (lax.map) on CPU,
  the remainder in one call (padding instead would copy every input); in one
  call elsewhere or when the leading axis is small."""
  n = args[0].shape[0]
  if jax.default_backend() != "cpu" or n <= block:
    return fn(*args)
  nb, m = n // block, (n // block) * block
  head = jax.lax.map(lambda xs: fn(*xs),
                     tuple(a[:m].reshape((nb, block) + a.shape[1:]) for a in args))
  head = jax.tree.map(lambda o: o.reshape((m,) + o.shape[2:]), head)
  if m == n:
    return head
  tail = fn(*(a[m:] for a in args))
  return jax.tree.map(lambda h, t: jnp.concatenate([h, t]), head, tail)


def _pixel_map(fn, *args):
  return _blocked(fn, args, _CPU_PIXEL_BLOCK)


def _pow7(x):
  x2 = x * x
  return x2 * x2 * x2 * x


# ---------------------------------------------------------------------------
# Per-image batch metrics on NHWC sRGB in [0, 1].
# ---------------------------------------------------------------------------

def delta_e(pred, true):
  """Mean CIEDE2000 over the pixels of each image.

  Args:
    pred, true: ``[N, H, W, 3]`` sRGB in ``[0, 1]``.

  Returns:
    ``[N]`` mean ΔE00 (Lab units; 0 = identical, ~2.3 = just noticeable), with
    both images converted by :func:`colorjax.color.rgb_to_lab` (D65, 2°) and
    ``true`` taken as the reference (ΔE00 is symmetric anyway).
  """
  pred, true = _float_pair(pred, true)
  n, h, w, c = pred.shape
  if c != 3:
    raise ValueError(f"delta_e needs RGB images [N, H, W, 3], got {pred.shape}")
  def per_px(*rgb):                                 # 6 channels: true RGB, pred RGB
    lab = [color.rgb_to_lab(jnp.stack(rgb[i:i + 3], axis=-1)) for i in (0, 3)]
    return _ciede2000_pixels(*(x[..., c] for x in lab for c in range(3)))
  de = _pixel_map(per_px, *(x[..., c].reshape(-1) for x in (true, pred) for c in range(3)))
  return jnp.mean(de.reshape(n, h * w), axis=-1)


_SSIM_SIZE, _SSIM_SIGMA, _SSIM_K1, _SSIM_K2 = 11, 1.5, 0.01, 0.03


def _gaussian_taps(size, sigma):
  """Normalised 1-D Gaussian taps, as dm_pix.ssim / skimage (truncate 3.5, σ 1.5
  -> radius 5) build them (here in float64, then rounded once)."""
  x = [(i - size // 2) / sigma for i in range(size)]
  w = [math.exp(-0.5 * v * v) for v in x]
  tot = sum(w)
  return [v / tot for v in w]


def _filter_valid(z, axis, taps):
  """'valid' correlation of ``z`` with symmetric ``taps`` along ``axis``, as
  shifted slices (XLA:CPU runs lax.conv with per-channel kernels ~30x slower)."""
  k = len(taps)
  h = k // 2
  n = z.shape[axis]
  sl = lambda start, stop: jax.lax.slice_in_dim(z, start, stop, axis=axis)
  out = taps[h] * sl(h, n - h)
  for i in range(h):
    out = out + taps[i] * (sl(i, n - k + 1 + i) + sl(k - 1 - i, n - i))
  return out


def _ssim_block(a, b):
  """dm_pix.ssim's formula (including its variance/covariance clipping) with a
  faster filter: the five filtered maps are stacked channel-first [N, 5, C, H, W]
  and blurred in two separable passes."""
  taps = _gaussian_taps(_SSIM_SIZE, _SSIM_SIGMA)
  a = jnp.moveaxis(a, -1, 1)
  b = jnp.moveaxis(b, -1, 1)
  z = jnp.stack([a, b, a * a, b * b, a * b], axis=1)
  z = jax.lax.optimization_barrier(z)             # don't recompute z in every tap
  z = jax.lax.optimization_barrier(_filter_valid(z, 3, taps))
  z = _filter_valid(z, 4, taps)
  mu0, mu1, e00, e11, e01 = (z[:, i] for i in range(5))
  mu00, mu11, mu01 = mu0 * mu0, mu1 * mu1, mu0 * mu1
  eps = float(jnp.finfo(jnp.float32).eps) ** 2
  s00 = jnp.maximum(eps, e00 - mu00)
  s11 = jnp.maximum(eps, e11 - mu11)
  s01 = e01 - mu01
  s01 = jnp.sign(s01) * jnp.minimum(jnp.sqrt(s00 * s11), jnp.abs(s01))
  c1 = (_SSIM_K1 * 1.0) ** 2
  c2 = (_SSIM_K2 * 1.0) ** 2
  smap = ((2 * mu01 + c1) * (2 * s01 + c2)) / ((mu00 + mu11 + c1) * (s00 + s11 + c2))
  return jnp.mean(smap, axis=(1, 2, 3))


def ssim(pred, true):
  """Per-image SSIM (Wang et al. 2004), the ``dm_pix.ssim`` definition.

  Settings: Gaussian window 11×11 with σ = 1.5, k1 = 0.01, k2 = 0.03,
  ``max_val`` (data range) 1.0, population (not sample) (co)variances, SSIM map
  over the 'valid' window positions only (no padding), **computed separately on
  each RGB channel and averaged over the three channels** (not on luminance;
  papers differ on this).  Equals ``dm_pix.ssim(pred, true)`` (same formula and
  variance clipping, faster separable filter; tested) and
  ``skimage.metrics.structural_similarity(true, pred, gaussian_weights=True,
  sigma=1.5, use_sample_covariance=False, data_range=1.0, channel_axis=-1)``
  (tested to 1e-4).

  Args:
    pred, true: ``[N, H, W, C]`` images in ``[0, 1]``, ``H, W >= 11``.

  Returns:
    ``[N]`` SSIM in ``[-1, 1]`` (1 = identical).
  """
  pred, true = _float_pair(pred, true)
  if pred.ndim != 4 or min(pred.shape[1:3]) < _SSIM_SIZE:
    raise ValueError(f"ssim needs [N, H, W, C] images with H, W >= 11, got {pred.shape}")
  return _blocked(_ssim_block, (pred, true), _CPU_IMAGE_BLOCK)


def psnr(pred, true):
  """Per-image PSNR in dB for data range 1 (``dm_pix.psnr``):
  ``-10 log10(mean((pred - true)^2))`` over H, W and C.  ``[N, H, W, C] -> [N]``;
  ``inf`` for identical images."""
  pred, true = _float_pair(pred, true)
  return dm_pix.psnr(pred, true)


def colorfulness(rgb):
  """Hasler & Süsstrunk (2003) colourfulness M of each image.

  On 0-255 values: ``rg = R - G``, ``yb = (R + G) / 2 - B``,
  ``M = sqrt(σ_rg² + σ_yb²) + 0.3 sqrt(μ_rg² + μ_yb²)`` with population (ddof=0)
  standard deviations over the pixels.  ``[N, H, W, 3]`` in ``[0, 1]`` -> ``[N]``
  (0 for greyscale; ~100+ for extremely colourful images).
  """
  rgb = _float_pair(rgb, rgb)[0] * 255.0
  R, G, B = rgb[..., 0], rgb[..., 1], rgb[..., 2]
  rg = R - G
  yb = 0.5 * (R + G) - B
  axes = (-2, -1)
  # Safe roots: finite gradients for grey images too (the colourfulness loss term).
  s = _safe_sqrt(jnp.var(rg, axis=axes) + jnp.var(yb, axis=axes))
  m = _safe_sqrt(jnp.mean(rg, axis=axes) ** 2 + jnp.mean(yb, axis=axes) ** 2)
  return s + 0.3 * m


def _float_pair(x, y):
  x, y = jnp.asarray(x), jnp.asarray(y)
  if x.shape != y.shape:
    raise ValueError(f"shape mismatch: {x.shape} vs {y.shape}")
  dtype = jnp.result_type(x, y)
  if not jnp.issubdtype(dtype, jnp.floating):
    dtype = jnp.result_type(float)
  return x.astype(dtype), y.astype(dtype)


@jax.jit
def image_metrics(pred, true):
  """All per-image metrics of a batch: ``[N, H, W, 3]`` sRGB in ``[0, 1]`` ->
  ``{"delta_e", "ssim", "psnr", "colorfulness_pred", "colorfulness_true"}``, each
  ``[N]``.  Jitted (compiled once per input shape/dtype)."""
  return {
      "delta_e": delta_e(pred, true),
      "ssim": ssim(pred, true),
      "psnr": psnr(pred, true),
      "colorfulness_pred": colorfulness(pred),
      "colorfulness_true": colorfulness(true),
  }



# ---------------------------------------------------------------------------
# Temporal stability of frame sequences.
# ---------------------------------------------------------------------------

def warp(image, flow):
  """Bilinear backward warp: ``out[y, x] = image[y + flow[y, x, 1], x + flow[y, x, 0]]``.

  ``image`` [H, W, C]; ``flow`` [H, W, 2] in pixels (dx, dy).  Samples outside the
  image take the nearest edge value.  -> [H, W, C] in ``image``'s float dtype.
  """
  image = jnp.asarray(image)
  if not jnp.issubdtype(image.dtype, jnp.floating):
    image = image.astype(jnp.float32)
  h, w = image.shape[:2]
  yy, xx = jnp.meshgrid(jnp.arange(h, dtype=image.dtype), jnp.arange(w, dtype=image.dtype),
                        indexing="ij")
  y = jnp.clip(yy + flow[..., 1], 0, h - 1)
  x = jnp.clip(xx + flow[..., 0], 0, w - 1)
  y0 = jnp.clip(jnp.floor(y), 0, h - 2 if h > 1 else 0).astype(jnp.int32)
  x0 = jnp.clip(jnp.floor(x), 0, w - 2 if w > 1 else 0).astype(jnp.int32)
  y1, x1 = jnp.minimum(y0 + 1, h - 1), jnp.minimum(x0 + 1, w - 1)
  fy, fx = (y - y0)[..., None], (x - x0)[..., None]
  top = image[y0, x0] * (1 - fx) + image[y0, x1] * fx
  bottom = image[y1, x0] * (1 - fx) + image[y1, x1] * fx
  return top * (1 - fy) + bottom * fy


@jax.jit
def warp_error(frames, flows, visible):
  """Warping error of Lai et al. 2018 ("Learning blind video temporal consistency").

  For each pair (t, t+1): frame t is warped to frame t+1 along ``flows[t]``, and the
  squared RGB difference is averaged over the visible pixels and the 3 channels,
  ``sum(M (V_{t+1} - warp(V_t))^2) / (3 sum M)`` (0 when nothing is visible); the
  result is the mean over pairs.

  Args:
    frames: [T, H, W, 3] sRGB in ``[0, 1]`` (T >= 2).
    flows: [T-1, H, W, 2] backward flow of frame t+1 in pixels (dx, dy): pixel x of frame
      t+1 shows what was at x + flows[t][x] in frame t.  Lai et al. compute it on the
      *input* frames, so every colorization of one clip is judged with the same flow.
    visible: [T-1, H, W] in {0, 1}: the non-occluded pixels of frame t+1 (e.g. a
      forward-backward consistency check).
  Returns:
    scalar, in (``[0, 1]``-scaled RGB)^2.
  """
  frames = jnp.asarray(frames, jnp.float32)
  warped = jax.vmap(warp)(frames[:-1], jnp.asarray(flows, jnp.float32))
  m = jnp.asarray(visible, jnp.float32)[..., None]
  sq = jnp.sum(m * (frames[1:] - warped) ** 2, axis=(1, 2, 3))
  n = 3.0 * jnp.sum(m, axis=(1, 2, 3))
  return jnp.mean(jnp.where(n > 0, sq / jnp.maximum(n, 1.0), 0.0))


def _channel_histograms(frames):
  """[T, H, W, 3] uint8 codes (or floats in [0, 1], rounded to codes) -> [T, 3, 256]
  histograms normalised to sum 1."""
  frames = jnp.asarray(frames)
  if jnp.issubdtype(frames.dtype, jnp.floating):
    frames = jnp.floor(jnp.clip(frames, 0.0, 1.0) * 255.0 + 0.5)
  codes = frames.astype(jnp.int32)
  t = codes.shape[0]
  flat = jnp.moveaxis(codes.reshape(t, -1, 3), -1, 1)           # [T, 3, HW]
  offsets = (jnp.arange(t * 3, dtype=jnp.int32) * 256).reshape(t, 3, 1)
  hist = jnp.zeros(t * 3 * 256, jnp.float32).at[(flat + offsets).ravel()].add(1.0)
  hist = hist.reshape(t, 3, 256)
  return hist / jnp.sum(hist, axis=-1, keepdims=True)


def _kl(p, q):
  """sum p log(p / q) over the last axis (natural log, 0 log 0 = 0)."""
  pos = p > 0
  return jnp.sum(jnp.where(pos, p * jnp.log(jnp.where(pos, p, 1.0) / jnp.where(pos, q, 1.0)),
                           0.0), axis=-1)


def _js(p, q):
  m = 0.5 * (p + q)
  return 0.5 * _kl(p, m) + 0.5 * _kl(q, m)


@functools.partial(jax.jit, static_argnames="dilations")
def cdc(frames, dilations=(1, 2, 4)):
  """Colour distribution consistency of Liu et al. 2021 (lower is more stable).

  For each dilation d: the Jensen-Shannon divergence (natural log, in ``[0, ln 2]``)
  between the 256-bin histograms of frames t and t+d, per RGB channel, averaged over
  channels and t; then the mean over the dilations that fit in the sequence (the paper's
  equal weights 1/3; a sequence shorter than 5 frames skips d = 4).

  Args:
    frames: [T, H, W, 3] uint8 sRGB codes, or floats in ``[0, 1]`` (rounded to codes).
  Returns:
    scalar; NaN if T < 2.
  """
  hist = _channel_histograms(frames)
  t = hist.shape[0]
  per_d = [jnp.mean(_js(hist[:-d], hist[d:])) for d in dilations if d < t]
  return jnp.mean(jnp.stack(per_d)) if per_d else jnp.float32(jnp.nan)
