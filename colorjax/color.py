"""sRGB <-> CIE Lab conversion and the study's Lab normalisation.

Every function here works on NumPy arrays *and* on JAX arrays/tracers:

* NumPy in -> NumPy out, computed with NumPy only.  The data pipeline calls these
  functions inside grain worker processes, which must never touch a JAX device,
  so the NumPy path creates no JAX arrays (``jax`` is imported only to recognise
  ``jax.Array`` inputs).
* ``jax.Array`` (including tracers under ``jit``/``grad``/``vmap``) in -> JAX out,
  computed with ``jax.numpy``; the functions are jittable and differentiable
  (the piecewise sRGB/Lab curves use the double-``where`` trick, so gradients are
  finite everywhere).

Conventions (identical to scikit-image's ``rgb2lab``/``lab2rgb`` with
``illuminant="D65", observer="2"``):

* RGB is gamma-encoded sRGB (IEC 61966-2-1 companding) in ``[0, 1]``, channel
  last, any leading shape.
* Lab: ``L`` in ``[0, 100]``, ``a``/``b`` roughly in ``[-128, 127]`` (sRGB gamut
  reaches about ``a`` in ``[-86, 98]``, ``b`` in ``[-108, 95]``), channel last.
* XYZ uses the sRGB primaries matrix of scikit-image and the D65 / 2° white
  ``(0.95047, 1.0, 1.08883)``.

Float inputs keep their dtype (float32 -> float32, float64 -> float64); integer
or bool inputs are converted to float32.

The last section is NumPy-only full-resolution rendering for inference (float32,
lookup tables, gamut mapping that keeps L*); it reuses the same curves and
constants, so each conversion is written once.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "rgb_to_lab", "lab_to_rgb",
    "normalize_l", "normalize_ab", "denormalize_l", "denormalize_ab",
    "rgb_to_model_inputs", "model_outputs_to_rgb",
    "srgb_to_linear", "linear_to_srgb", "luminance_to_lightness", "linear_to_srgb8",
    "lab_to_rgb8",
]

# Same constants as skimage.color.colorconv (xyz_from_rgb, rgb_from_xyz = inv(...)).
XYZ_FROM_RGB = np.array([[0.412453, 0.357580, 0.180423],
                         [0.212671, 0.715160, 0.072169],
                         [0.019334, 0.119193, 0.950227]])
RGB_FROM_XYZ = np.linalg.inv(XYZ_FROM_RGB)
# Python-float copies: weakly typed, so float32 inputs stay float32 in NumPy and JAX.
_XYZ_FROM_RGB = tuple(map(tuple, XYZ_FROM_RGB.tolist()))
_RGB_FROM_XYZ = tuple(map(tuple, RGB_FROM_XYZ.tolist()))
WHITE_D65 = (0.95047, 1.0, 1.08883)   # CIE XYZ of D65, 2° observer, Y = 1

# Study normalisation of the Lab channels fed to / produced by the models.
L_SCALE = 50.0    # L in [0, 100]  <-> L_norm = L / 50 - 1 in [-1, 1]
AB_SCALE = 110.0  # a, b ~ [-110, 110] <-> ab_norm = ab / 110 ~ [-1, 1]


def _xp(x):
  """jax.numpy for jax arrays / tracers, NumPy for everything else."""
  return jnp if isinstance(x, jax.Array) else np


def _as_float(x, xp):
  x = xp.asarray(x)
  if not xp.issubdtype(x.dtype, xp.floating):
    x = x.astype(xp.float32)
  return x


def _mat3(m, c0, c1, c2):
  """m @ (c0, c1, c2) written out elementwise: exact-precision on any backend (no
  TF32/bf16 matmul passes on GPU/TPU) and fusible with the surrounding ops."""
  return tuple(r0 * c0 + r1 * c1 + r2 * c2 for r0, r1, r2 in m)


def _split(x, xp):
  if x.shape[-1] != 3:
    raise ValueError(f"expected 3 channels on the last axis, got shape {x.shape}")
  return x[..., 0], x[..., 1], x[..., 2]


def rgb_to_lab(rgb):
  """sRGB in ``[0, 1]`` (shape ``[..., 3]``) -> CIE Lab (D65, 2°), shape ``[..., 3]``.

  Output units: ``L`` in ``[0, 100]``; ``a``, ``b`` in Lab units (about
  ``[-128, 127]``).  Matches ``skimage.color.rgb2lab`` to float rounding.
  NumPy in -> NumPy out; ``jax.Array`` in -> ``jax.Array`` out (jittable).
  """
  xp = _xp(rgb)
  rgb = _as_float(rgb, xp)
  dt = rgb.dtype
  r, g, b = _split(_decode_srgb(rgb, xp), xp)
  x, y, z = _mat3(_XYZ_FROM_RGB, r, g, b)
  fx, fy, fz = (_lab_f(v / w, xp) for v, w in zip((x, y, z), WHITE_D65))
  L = 116.0 * fy - 16.0
  a = 500.0 * (fx - fy)
  bb = 200.0 * (fy - fz)
  return xp.stack([L, a, bb], axis=-1).astype(dt)


def _decode_srgb(rgb, xp):
  """sRGB companding inverse: encoded values -> linear light (IEC 61966-2-1).
  The double where keeps power()'s gradient finite at 0."""
  mask = rgb > 0.04045
  return xp.where(mask, _pow((xp.where(mask, rgb, 1.0) + 0.055) / 1.055, 2.4, xp), rgb / 12.92)


def _encode_srgb(lin, xp):
  """sRGB companding: linear light -> encoded values (no clipping)."""
  mask = lin > 0.0031308
  return xp.where(mask, 1.055 * _pow(xp.where(mask, lin, 1.0), 1 / 2.4, xp) - 0.055, lin * 12.92)


def _pow(x, p, xp):
  """x ** p for x > 0.  In JAX as exp(p log x): XLA:CPU vectorises exp/log but
  lowers pow/cbrt to scalar libm calls (~20-40 ns per element)."""
  if xp is np:
    return np.cbrt(x) if p == 1.0 / 3.0 else np.power(x, p)
  return jnp.exp(p * jnp.log(x))


def _lab_f(t, xp):
  mask = t > 0.008856
  return xp.where(mask, _pow(xp.where(mask, t, 1.0), 1.0 / 3.0, xp), 7.787 * t + 16.0 / 116.0)


def _lab_f_inv(t, xp):
  return xp.where(t > 0.2068966, t * t * t, (t - 16.0 / 116.0) / 7.787)


def lab_to_rgb(lab):
  """CIE Lab (D65, 2°; ``L`` in ``[0, 100]``, ``a``/``b`` in Lab units), shape
  ``[..., 3]`` -> sRGB in ``[0, 1]``, shape ``[..., 3]``.

  Out-of-gamut colours are handled exactly like ``skimage.color.lab2rgb``:
  negative ``Z`` is clipped to 0 before the inverse Lab curve, and the final sRGB
  is clipped to ``[0, 1]`` (per channel).  NumPy in -> NumPy out;
  ``jax.Array`` in -> ``jax.Array`` out (jittable).
  """
  xp = _xp(lab)
  lab = _as_float(lab, xp)
  dt = lab.dtype
  L, a, b = _split(lab, xp)
  fy = (L + 16.0) / 116.0
  fx = a / 500.0 + fy
  fz = xp.maximum(fy - b / 200.0, 0.0)   # skimage clips negative z to 0 (with a warning)
  x, y, z = (_lab_f_inv(f, xp) * w for f, w in zip((fx, fy, fz), WHITE_D65))
  rgb = _encode_srgb(xp.stack(_mat3(_RGB_FROM_XYZ, x, y, z), axis=-1), xp)
  return xp.clip(rgb, 0.0, 1.0).astype(dt)


def normalize_l(L):
  """Lightness ``L`` in ``[0, 100]`` -> model units ``L / 50 - 1`` in ``[-1, 1]``."""
  return L / L_SCALE - 1.0


def denormalize_l(L_norm):
  """Model units in ``[-1, 1]`` -> lightness ``L = 50 (L_norm + 1)`` in ``[0, 100]``."""
  return (L_norm + 1.0) * L_SCALE


def normalize_ab(ab):
  """Chromatic channels ``a``, ``b`` (Lab units, sRGB gamut within about
  ``[-110, 110]``) -> model units ``ab / 110`` (about ``[-1, 1]``)."""
  return ab / AB_SCALE


def denormalize_ab(ab_norm):
  """Model units ``ab_norm`` (about ``[-1, 1]``) -> Lab units ``110 * ab_norm``."""
  return ab_norm * AB_SCALE


def rgb_to_model_inputs(rgb):
  """sRGB ``[..., 3]`` in ``[0, 1]`` -> ``(L_norm [..., 1] in [-1, 1],
  ab_norm [..., 2] ~ [-1, 1])``, the generator's input and regression target."""
  lab = rgb_to_lab(rgb)
  return normalize_l(lab[..., :1]), normalize_ab(lab[..., 1:])


def model_outputs_to_rgb(L_norm, ab_norm):
  """``L_norm [..., 1]`` (``[-1, 1]``) and predicted ``ab_norm [..., 2]`` (model
  units) -> sRGB ``[..., 3]`` in ``[0, 1]`` (out-of-gamut colours clipped as in
  :func:`lab_to_rgb`).  NumPy if both inputs are NumPy, JAX otherwise."""
  if isinstance(L_norm, jax.Array) or isinstance(ab_norm, jax.Array):
    L_norm, ab_norm = jnp.asarray(L_norm), jnp.asarray(ab_norm)
    xp = jnp
  else:
    xp = np
  lab = xp.concatenate([denormalize_l(L_norm), denormalize_ab(ab_norm)], axis=-1)
  return lab_to_rgb(lab)


# ---------------------------------------------------------------------------
# Full-resolution rendering for inference (NumPy only, float32)
# ---------------------------------------------------------------------------
# The same matrix, white point and curves as rgb_to_lab / lab_to_rgb (scikit-image's). The
# green row of XYZ_FROM_RGB sums to 1, so linear grey (y, y, y) has luminance y: the gamut
# mapping below relies on that.
_Y_FROM_RGB = XYZ_FROM_RGB[1].astype(np.float32)
_RGB_FROM_XYZ_F32 = RGB_FROM_XYZ.astype(np.float32)
_LUT_BITS = 16


def srgb_to_linear(v):
  """sRGB-encoded values in ``[0, 1]`` -> linear light in ``[0, 1]`` (NumPy)."""
  return _decode_srgb(_as_float(np.asarray(v), np), np)


def linear_to_srgb(v):
  """Linear light -> sRGB-encoded values in ``[0, 1]`` (clipped first; NumPy)."""
  return _encode_srgb(np.clip(_as_float(np.asarray(v), np), 0.0, 1.0), np)


def luminance(linear_rgb):
  """Relative luminance Y (white = 1) of linear RGB ``[..., 3]`` (NumPy, float32)."""
  return np.asarray(linear_rgb, np.float32) @ _Y_FROM_RGB


def luminance_to_lightness(y):
  """Relative luminance Y in ``[0, 1]`` (white = 1) -> CIE ``L*`` in ``[0, 100]`` (NumPy)."""
  y = np.asarray(y, np.float32)
  return (116.0 * _lab_f(y / WHITE_D65[1], np) - 16.0).astype(np.float32)


@functools.lru_cache(maxsize=2)
def linear_lut(bits: int) -> np.ndarray:
  """Linear light (float32) of every integer sRGB code of ``bits`` bits: exact and fast
  for uint8/uint16 inputs."""
  top = (1 << bits) - 1
  return srgb_to_linear(np.arange(top + 1, dtype=np.float64) / top).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _srgb8_lut() -> np.ndarray:
  """The 8-bit sRGB code of each linear-light level k / (2^16 - 1)."""
  levels = np.arange(1 << _LUT_BITS, dtype=np.float64) / ((1 << _LUT_BITS) - 1)
  return np.floor(linear_to_srgb(levels) * 255 + 0.5).astype(np.uint8)


def linear_to_srgb8(rgb):
  """Linear light -> 8-bit sRGB codes (clipped to ``[0, 255]``).

  A lookup on a 16-bit quantisation of linear light: ~10x faster than a power; the linear
  step (1.5e-5) is 20x finer than the smallest 8-bit sRGB step, so codes are exact except
  within 1.5e-5 of a rounding boundary (then off by one).
  """
  top = (1 << _LUT_BITS) - 1
  index = np.clip(rgb * np.float32(top) + np.float32(0.5), 0, top).astype(np.int32)
  return _srgb8_lut()[index]


def lab_to_rgb8(lightness, luminance_y, ab):
  """``L*`` [H,W] in ``[0, 100]`` (and its luminance Y in ``[0, 1]``), ``a*b*`` [H,W,2] in
  Lab units -> sRGB uint8 [H,W,3] (NumPy, float32).

  Unlike :func:`lab_to_rgb` (per-channel clipping, which shifts ``L*``), out-of-gamut
  colours are mixed towards the grey of the same luminance in linear RGB, just enough to
  fit in ``[0, 1]``: lightness and (approximately) hue are kept, chroma is reduced.
  """
  fy = (lightness + 16.0) / 116.0
  x = _lab_f_inv(fy + ab[..., 0] * (1 / 500), np) * WHITE_D65[0]
  z = _lab_f_inv(fy - ab[..., 1] * (1 / 200), np) * WHITE_D65[2]
  rgb = np.stack([x, luminance_y, z], axis=-1).astype(np.float32) @ _RGB_FROM_XYZ_F32.T
  off = np.abs(rgb - 0.5) > 0.5                # channel outside [0, 1]
  outside = off[..., 0] | off[..., 1] | off[..., 2]
  if outside.any():
    y = luminance_y[outside][:, None]
    d = rgb[outside] - y                         # the chroma part; grey (y, y, y) is in gamut
    with np.errstate(divide="ignore", invalid="ignore"):
      room = np.where(d > 0, (1 - y) / d, np.where(d < 0, y / -d, np.inf))
    k = np.minimum(np.minimum(room[:, 0], room[:, 1]), np.minimum(room[:, 2], 1.0))
    rgb[outside] = y + k[:, None] * d
  return linear_to_srgb8(rgb)
