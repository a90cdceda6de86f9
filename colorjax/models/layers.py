"""Building blocks shared by the generator and the discriminator.

Arrays are NHWC. Convolutions use explicit PyTorch-style symmetric padding so that
imported torchvision weights give identical features (flax's "SAME" pads strided
convolutions asymmetrically).
"""
from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

# pix2pix initialisation: conv kernels ~ N(0, 0.02), BatchNorm scale ~ N(1, 0.02).
conv_init = nn.initializers.normal(stddev=0.02)


def bn_scale_init(key, shape, dtype=jnp.float32):
  return 1.0 + 0.02 * nn.initializers.normal(stddev=1.0)(key, shape, dtype)


def conv(features: int, kernel: int, stride: int = 1, padding: int | None = None,
         use_bias: bool = False, dtype: Any = jnp.float32, name: str | None = None) -> nn.Conv:
  """A 2D convolution with torch-style padding (default `kernel // 2`) and float32 params."""
  pad = kernel // 2 if padding is None else padding
  return nn.Conv(features, (kernel, kernel), strides=(stride, stride),
                 padding=((pad, pad), (pad, pad)), use_bias=use_bias, dtype=dtype,
                 param_dtype=jnp.float32, kernel_init=conv_init, name=name)


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
