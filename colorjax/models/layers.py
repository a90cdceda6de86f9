"""Building blocks shared by the generator and the discriminator.

Arrays are NHWC. Convolutions use explicit PyTorch-style symmetric padding so that
imported torchvision weights give identical features (flax's "SAME" pads strided
convolutions asymmetrically).
"""
from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from colorjax import xla_flags

# pix2pix initialisation: conv kernels ~ N(0, 0.02), BatchNorm scale ~ N(1, 0.02).
conv_init = nn.initializers.normal(stddev=0.02)


def bn_scale_init(key, shape, dtype=jnp.float32):
  return 1.0 + 0.02 * nn.initializers.normal(stddev=1.0)(key, shape, dtype)


def conv(features: int, kernel: int, stride: int = 1, padding: int | None = None,
         use_bias: bool = False, dtype: Any = jnp.float32, name: str | None = None) -> nn.Conv:
  """A 2D convolution with torch-style padding (default `kernel // 2`) and float32 params."""
  pad = kernel // 2 if padding is None else padding
  extra = {}
  if stride == 2 and kernel % 2 == 0:
    extra["conv_general_dilated"] = space_to_depth_conv
  return nn.Conv(features, (kernel, kernel), strides=(stride, stride),
                 padding=((pad, pad), (pad, pad)), use_bias=use_bias, dtype=dtype,
                 param_dtype=jnp.float32, kernel_init=conv_init, name=name, **extra)


def space_to_depth_conv(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                        dimension_numbers=None, feature_group_count=1, precision=None,
                        preferred_element_type=None):
  """`lax.conv_general_dilated` for `nn.Conv`; on CPU with colorjax's XLA flag (convolutions on
  Eigen, `colorjax.xla_flags`) a stride-2 NHWC convolution with an even kernel (the PatchGAN's
  4×4/2) runs as a stride-1 convolution over 2×2 space-to-depth blocks.

  Same sums (kernel tap (2i + p, 2j + q) meets block (i, j), phase (p, q)), so the same
  parameters and values up to float rounding. Why: XLA:CPU computes the input gradient of a
  strided convolution as a convolution over a zero-dilated input, ~4× the work on its slow
  path; the stride-1 form's gradients are plain convolutions. 16×256² D+G step on 2 cores:
  11.0 -> 9.7 s with the flag; without it (YNNPACK convolutions) the rewrite is slower, so it
  follows the flag, read when the model is traced. Elsewhere: `lax.conv_general_dilated`.
  """
  kh, kw, c, k = rhs.shape
  plain = functools.partial(lax.conv_general_dilated, lhs, rhs, window_strides, padding,
                            lhs_dilation, rhs_dilation, dimension_numbers, feature_group_count,
                            precision=precision, preferred_element_type=preferred_element_type)
  nhwc = lax.conv_dimension_numbers(lhs.shape, rhs.shape, ("NHWC", "HWIO", "NHWC"))
  if (jax.default_backend() != "cpu" or not xla_flags.cpu_convolutions_on_eigen()
      or tuple(window_strides) != (2, 2) or kh % 2 or kw % 2
      or feature_group_count != 1 or any(d not in (None, (1, 1)) for d in
                                          (lhs_dilation, rhs_dilation))
      or lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers) != nhwc
      or isinstance(padding, str)):
    return plain()
  (pt, pb), (pl, pr) = padding
  n, h, w, _ = lhs.shape
  oh, ow = (h + pt + pb - kh) // 2 + 1, (w + pl + pr - kw) // 2 + 1
  ph, pw = 2 * oh + kh - 2, 2 * ow + kw - 2      # rows/cols the output reads; even
  x = lax.pad(lhs, jnp.zeros((), lhs.dtype),   # negative high padding crops unread rows
              [(0, 0, 0), (pt, ph - h - pt, 0), (pl, pw - w - pl, 0), (0, 0, 0)])
  x = x.reshape(n, ph // 2, 2, pw // 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
  x = x.reshape(n, ph // 2, pw // 2, 4 * c)
  r = rhs.reshape(kh // 2, 2, kw // 2, 2, c, k).transpose(0, 2, 1, 3, 4, 5)
  r = r.reshape(kh // 2, kw // 2, 4 * c, k)
  return lax.conv_general_dilated(x, r, (1, 1), "VALID", dimension_numbers=nhwc,
                                  precision=precision,
                                  preferred_element_type=preferred_element_type)


def batch_norm(train: bool, dtype: Any = jnp.float32, name: str | None = None) -> nn.BatchNorm:
  """BatchNorm with torch's defaults (momentum 0.1, eps 1e-5); statistics kept in float32.

  Under `jax.jit` with the batch sharded over a mesh the statistics are global, so no
  `axis_name` is needed for data parallelism.
  """
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                      dtype=dtype, param_dtype=jnp.float32, scale_init=bn_scale_init,
                      name=name)


@jax.custom_vjp
def upsample2x(x: jnp.ndarray) -> jnp.ndarray:
  """Nearest-neighbour ×2 upsampling of an NHWC tensor (as `F.interpolate(scale_factor=2)`).

  Its gradient sums each 2×2 block as four strided slices rather than autodiff's reduce over
  a [N, H, 2, W, 2, C] view: XLA:CPU hands that reduce to YNNPACK together with the
  convolution that produces the gradient, and runs the pair ~10× slower than the
  convolution alone on Eigen. 16×256² D+G step on 2 cores: 10.3 -> 9.3 s.
  """
  n, h, w, c = x.shape
  x = jnp.broadcast_to(x[:, :, None, :, None, :], (n, h, 2, w, 2, c))
  return x.reshape(n, 2 * h, 2 * w, c)


def _upsample2x_fwd(x):
  return upsample2x(x), None


def _upsample2x_bwd(_, g):
  return (g[:, 0::2, 0::2] + g[:, 0::2, 1::2] + g[:, 1::2, 0::2] + g[:, 1::2, 1::2],)


upsample2x.defvjp(_upsample2x_fwd, _upsample2x_bwd)


def _pool_taps(x):
  """The nine stride-2 views of `x` (NHWC) padded by 1 with -inf, for a 3×3/2 window with
  padding 1: tap (i, j) holds input pixel (2a + i - 1, 2b + j - 1) at output (a, b)."""
  n, h, w, c = x.shape
  oh, ow = (h - 1) // 2 + 1, (w - 1) // 2 + 1
  xp = jnp.pad(x, ((0, 0), (1, 2 * oh - h), (1, 2 * ow - w), (0, 0)), constant_values=-jnp.inf)
  return [xp[:, i:i + 2 * oh - 1:2, j:j + 2 * ow - 1:2] for i in range(3) for j in range(3)]


@jax.custom_vjp
def max_pool_3x3_s2(x: jnp.ndarray) -> jnp.ndarray:
  """3×3 max pooling, stride 2, padding 1 (ResNet's stem pool; `nn.max_pool`'s values).

  Forward and gradient are elementwise over nine strided views; the gradient goes to the
  first maximum of each window in row-major order (as PyTorch and XLA's select-and-scatter).
  Why not `nn.max_pool`: on XLA:CPU its gradient is a variadic reduce-window carrying argmax
  indices. 16×256² D+G step on 2 cores: 10.0 -> 9.5 s.
  """
  return functools.reduce(jnp.maximum, _pool_taps(x))


def _max_pool_fwd(x):
  y = max_pool_3x3_s2(x)
  return y, (x, y)


def _max_pool_bwd(res, g):
  x, y = res
  n, h, w, c = x.shape
  oh, ow = y.shape[1:3]
  taken = jnp.zeros(y.shape, bool)
  dxp = jnp.zeros((n, 2 * oh + 1, 2 * ow + 1, c), g.dtype)
  for k, tap in enumerate(_pool_taps(x)):
    i, j = divmod(k, 3)
    hit = (tap == y) & ~taken
    taken = taken | hit
    dxp = dxp + lax.pad(jnp.where(hit, g, 0), jnp.zeros((), g.dtype),
                        [(0, 0, 0), (i, 2 - i, 1), (j, 2 - j, 1), (0, 0, 0)])
  return (dxp[:, 1:1 + h, 1:1 + w],)


max_pool_3x3_s2.defvjp(_max_pool_fwd, _max_pool_bwd)
