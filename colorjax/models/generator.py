"""Generator: a UNet whose encoder is a ResNet (ResNet34 by default).

Mirrors segmentation_models_pytorch's `Unet('resnet34', in_channels=1, classes=2)`:
encoder stem 7×7/2 → max-pool → BasicBlock stages; decoder blocks upsample ×2, concatenate
the skip at the same resolution (1/16, 1/8, 1/4, 1/2) and apply two 3×3 conv-BN-ReLU; a 3×3
head gives 2 channels through tanh. At full size it has 24,430,242 parameters, exactly the
PyTorch reference. A hint model (`hints=True`, Zhang et al. 2017) also takes a sparse colour-hint
map, which it first spreads along the edges of L (`colorjax.hints.guide`: parameter-free, no
gradient); its stem convolution has 4 input channels (L, guide a, guide b, hint reach), 9,408
more parameters at full size; nothing else changes.
"""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from colorjax import ab_bins
from colorjax import hints as hints_lib
from colorjax.color import normalize_ab
from colorjax.models.layers import batch_norm, conv, max_pool_3x3_s2, upsample2x

# BasicBlocks per stage for the supported encoders.
ENCODER_STAGES = {
    "resnet10": (1, 1, 1, 1),
    "resnet18": (2, 2, 2, 2),
    "resnet34": (3, 4, 6, 3),
}


class BasicBlock(nn.Module):
  """ResNet BasicBlock: two 3×3 conv-BN, identity or 1×1/stride projection shortcut."""
  features: int
  stride: int = 1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    residual = x
    y = conv(self.features, 3, self.stride, dtype=self.dtype, name="conv1")(x)
    y = nn.relu(batch_norm(train, self.dtype, name="bn1")(y))
    y = conv(self.features, 3, dtype=self.dtype, name="conv2")(y)
    y = batch_norm(train, self.dtype, name="bn2")(y)
    if self.stride != 1 or x.shape[-1] != self.features:
      residual = conv(self.features, 1, self.stride, padding=0, dtype=self.dtype,
                      name="downsample_conv")(x)
      residual = batch_norm(train, self.dtype, name="downsample_bn")(residual)
    return nn.relu(y + residual)


class ResNetEncoder(nn.Module):
  """ResNet feature extractor; returns features at 1/2, 1/4, 1/8, 1/16 and 1/32."""
  stage_sizes: Sequence[int] = ENCODER_STAGES["resnet34"]
  width: int = 64
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    x = conv(self.width, 7, 2, dtype=self.dtype, name="conv1")(x)
    x = nn.relu(batch_norm(train, self.dtype, name="bn1")(x))
    features = [x]                                   # 1/2, `width` channels
    x = max_pool_3x3_s2(x)
    for i, blocks in enumerate(self.stage_sizes):
      for j in range(blocks):
        stride = 2 if i > 0 and j == 0 else 1
        x = BasicBlock(self.width * 2**i, stride, self.dtype, name=f"layer{i + 1}_{j}")(x, train)
      features.append(x)                             # 1/4, 1/8, 1/16, 1/32
    return features


class DecoderBlock(nn.Module):
  """Upsample ×2, concatenate the skip (if any), then two 3×3 conv-BN-ReLU."""
  features: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, skip, train: bool):
    x = upsample2x(x)
    if skip is not None:
      x = jnp.concatenate([x, skip.astype(x.dtype)], axis=-1)
    for k in (1, 2):
      x = conv(self.features, 3, dtype=self.dtype, name=f"conv{k}")(x)
      x = nn.relu(batch_norm(train, self.dtype, name=f"bn{k}")(x))
    return x


class Generator(nn.Module):
  """L (+ colour hints) → ab colorizer.

  Input: `L` [N, H, W, 1], normalised lightness L*/50 − 1 in [-1, 1]; H and W multiples of 32.
  `hints` (only for `hints=True` models): None (automatic mode, the same as no hint anywhere)
  or [N, H, W, 3] = (hint a*/110, hint b*/110, mask in {0, 1}), zero where mask is 0; the
  network reads them spread along the edges of L (`colorjax.hints.guide`).
  Output: ab [N, H, W, 2] in [-1, 1], i.e. a*/110 and b*/110; float32 whatever `dtype`.
  `head="ab"` (the recipe): a 2-channel 3×3 conv through tanh. `head="bins"` (Zhang et al.
  2016; `colorjax.ab_bins`): a K-channel 3×3 conv of logits over the K in-gamut a*b* bins,
  decoded to ab by the annealed mean at `temperature`; `return_logits=True` returns the
  logits [N, H, W, K] (float32) instead, for the training loss.
  `dtype` is the compute dtype (float32 or bfloat16); parameters and BatchNorm statistics stay
  float32.
  """
  encoder: str = "resnet34"
  encoder_width: int = 64
  decoder_widths: Sequence[int] = (256, 128, 64, 32, 16)
  out_channels: int = 2
  hints: bool = False             # a 4-channel input: L plus the hint map
  dtype: Any = jnp.float32
  head: str = "ab"                 # "ab" | "bins"
  temperature: float = ab_bins.TEMPERATURE

  @nn.compact
  def __call__(self, L, hints=None, train: bool = False, *, return_logits: bool = False):
    if self.encoder not in ENCODER_STAGES:
      raise ValueError(f"model.encoder={self.encoder!r}: expected one of {sorted(ENCODER_STAGES)}")
    if len(self.decoder_widths) != 5:
      raise ValueError(f"model.decoder_widths={tuple(self.decoder_widths)}: expected 5 widths")
    if L.shape[1] % 32 or L.shape[2] % 32:
      raise ValueError(f"Generator input {L.shape[1]}×{L.shape[2]}: height and width must be "
                       "multiples of 32")
    x = L.astype(self.dtype)
    if self.hints:
      if hints is None:                     # no hint anywhere: the guide is zero
        guide = jnp.zeros(L.shape[:3] + (3,), self.dtype)
      elif hints.shape != L.shape[:3] + (3,):
        raise ValueError(f"Generator hints {hints.shape}: expected {L.shape[:3] + (3,)} "
                         "(hint a/110, hint b/110, mask) at the size of L")
      else:
        guide = hints_lib.guide(L, hints)
      x = jnp.concatenate([x, guide.astype(self.dtype)], axis=-1)
    elif hints is not None:
      raise ValueError("this generator was built without hint inputs (config.model.hints=False); "
                       "train a hint model (configs/hints.py) or pass hints=None")
    feats = ResNetEncoder(ENCODER_STAGES[self.encoder], self.encoder_width, self.dtype,
                          name="encoder")(x, train)
    x, skips = feats[-1], feats[-2::-1] + [None]     # skips at 1/16, 1/8, 1/4, 1/2, none
    for i, (width, skip) in enumerate(zip(self.decoder_widths, skips)):
      x = DecoderBlock(width, self.dtype, name=f"decoder{i}")(x, skip, train)
    if self.head == "bins":
      logits = conv(ab_bins.num_bins(), 3, use_bias=True, dtype=self.dtype, name="head")(x)
      logits = logits.astype(jnp.float32)
      if return_logits:
        return logits
      return jnp.clip(normalize_ab(ab_bins.annealed_mean(logits, self.temperature)), -1.0, 1.0)
    if self.head != "ab":
      raise ValueError(f"Generator head={self.head!r}: expected 'ab' or 'bins'")
    x = conv(self.out_channels, 3, use_bias=True, dtype=self.dtype, name="head")(x)
    return jnp.tanh(x.astype(jnp.float32))
