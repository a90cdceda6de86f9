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


def upsample2x(x: jnp.ndarray) -> jnp.ndarray:
  """Nearest-neighbour ×2 upsampling of an NHWC tensor (as `F.interpolate(scale_factor=2)`)."""
  n, h, w, c = x.shape
  x = jnp.broadcast_to(x[:, :, None, :, None, :], (n, h, 2, w, 2, c))
  return x.reshape(n, 2 * h, 2 * w, c)


max_pool_3x3_s2 = functools.partial(nn.max_pool, window_shape=(3, 3), strides=(2, 2),
                                    padding=((1, 1), (1, 1)))
