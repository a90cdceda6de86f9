"""Discriminator: the pix2pix 70×70 PatchGAN (NLayerDiscriminator, n_layers=3)."""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from colorjax.models.layers import batch_norm, conv


class Discriminator(nn.Module):
  """Patch logits for an (L, ab) pair.

  Inputs: `L` [N, H, W, 1] and `ab` [N, H, W, 2], both normalised to [-1, 1].
  Output: float32 logits [N, H/8 − 2, W/8 − 2, 1] (30×30 for 256×256 with 3 layers): 4×4
  convs of `width`·(1, 2, 4, 8) channels with strides 2-2-2-1 then a 1-channel 4×4/1 conv;
  BatchNorm on all but the first; LeakyReLU 0.2. 2,765,633 parameters at width 64.
  """
  width: int = 64
  layers: int = 3
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, L, ab, train: bool = False):
    x = jnp.concatenate([L, ab], axis=-1).astype(self.dtype)
    x = nn.leaky_relu(conv(self.width, 4, 2, 1, use_bias=True, dtype=self.dtype, name="conv0")(x), 0.2)
    for i in range(1, self.layers + 1):
      stride = 2 if i < self.layers else 1
      features = self.width * min(2**i, 8)
      x = conv(features, 4, stride, 1, dtype=self.dtype, name=f"conv{i}")(x)
      x = nn.leaky_relu(batch_norm(train, self.dtype, name=f"bn{i}")(x), 0.2)
    x = conv(1, 4, 1, 1, use_bias=True, dtype=self.dtype, name="logits")(x)
    return x.astype(jnp.float32)
