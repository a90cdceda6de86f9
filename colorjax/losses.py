"""How the generator learns colour: the configurable colour loss of `train.train_step`.

`config.loss` picks the head and the terms (all in float32, whatever the compute dtype):

  L_colour = λ_L1 · mean|âb − ab|                                    (l1_weight; normalised ab)
           + λ_CE · mean_px[ w_{q*(ab)} · −Σ_k z_k(ab) log softmax(ẑ)_k ]   (class_weight)
           + λ_M  · mean_img| M(rgb(L, âb)) − M(rgb(L, ab)) |               (colorfulness_weight)

* `kind="l1"` — the study's recipe: a 2-channel tanh head regresses ab/110, λ_L1 = 100. It
  learns the average of the plausible colours, which is greyish (the study's flaw).
* `kind="classification"` — Zhang et al. 2016: a K-logit head (K = 262 in-gamut a*b* bins of
  10 units, see `colorjax.ab_bins`), soft-encoded targets z (5 nearest centres, Gaussian
  σ = 5), cross-entropy rebalanced by w (λ = 0.5 over the training images' prior smoothed with
  σ = 5, mean 1 under that prior; q* = the pixel's nearest bin), and âb = the annealed mean
  of softmax(ẑ) at T = 0.38 (what D sees, what the L1 and colourfulness terms and inference
  use). λ_L1 may stay > 0 to add an L1 on the annealed mean.
* `colorfulness_weight` > 0 — a DDColor-style term with either head: the gap between the
  Hasler–Süsstrunk colourfulness M (`colorjax.metrics.colorfulness`, 0-255 RGB units, ≈ 0-110)
  of the prediction and of the truth, per image, both rebuilt with the true L.

The adversarial term BCE(D(L, âb), 1) is added by the train step, unchanged.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from colorjax import ab_bins, color, metrics, models

KINDS = ("l1", "classification")


def decode(out: jax.Array, config) -> jax.Array:
  """The generator's training output → normalised ab [..., 2] in [-1, 1] (float32)."""
  if models.generator_head(config) == "ab":
    return out.astype(jnp.float32)
  ab = ab_bins.annealed_mean(out, float(config.loss.get("temperature", ab_bins.TEMPERATURE)))
  return jnp.clip(color.normalize_ab(ab), -1.0, 1.0)


def l1(ab_pred: jax.Array, ab_true: jax.Array) -> jax.Array:
  """Mean absolute error of normalised ab (the recipe's term, before λ)."""
  return jnp.abs(ab_pred - ab_true).mean()


def rebalanced_cross_entropy(logits: jax.Array, ab_true: jax.Array, class_weights: jax.Array,
                             soft_sigma: float = ab_bins.SOFT_SIGMA, local: bool = True
                             ) -> jax.Array:
  """Zhang et al.'s multinomial loss: mean over pixels of w_{q*} · −Σ_k z_k log p_k.

  `logits` [..., K]; `ab_true` [..., 2] normalised (ab/110); `class_weights` [K] from
  `ab_bins.rebalance_weights`. z: the 5-nearest-centre soft encoding (σ = `soft_sigma`).
  `local` (the default) encodes over each pixel's 25 neighbouring cells
  (`ab_bins.soft_encode_local`, a fifth of the dense encoding's time on a CPU) and writes it as
  logsumexp(ẑ) − Σ_k z_k ẑ_k over them (Σ z = 1); where that encoding is not exact for some
  pixel (colours far outside sRGB) the whole batch takes the dense path, `local=False`.
  """
  ab = color.denormalize_ab(ab_true.astype(jnp.float32))
  logits = logits.astype(jnp.float32)
  w = jnp.asarray(class_weights)

  def dense():
    z, nearest = ab_bins.soft_encode(ab, sigma=soft_sigma)
    return (w[nearest] * -(z * jax.nn.log_softmax(logits, axis=-1)).sum(axis=-1)).mean()

  if not local:
    return dense()
  bins, z, nearest, exact = ab_bins.soft_encode_local(ab, sigma=soft_sigma)

  def sparse():
    picked = jnp.take_along_axis(logits, bins, axis=-1)
    ce = jax.nn.logsumexp(logits, axis=-1) - (z * picked).sum(axis=-1)
    return (w[nearest] * ce).mean()

  return jax.lax.cond(exact, sparse, dense)


def colorfulness_gap(L: jax.Array, ab_pred: jax.Array, ab_true: jax.Array) -> jax.Array:
  """mean over images of |M(pred) − M(truth)|, Hasler–Süsstrunk M on RGB rebuilt from the true
  L (normalised L [B,H,W,1], ab [B,H,W,2]); differentiable (grey predictions included)."""
  L = L.astype(jnp.float32)
  pred = metrics.colorfulness(color.model_outputs_to_rgb(L, ab_pred))
  true = metrics.colorfulness(color.model_outputs_to_rgb(L, ab_true.astype(jnp.float32)))
  return jnp.abs(pred - jax.lax.stop_gradient(true)).mean()


class ColourLoss:
  """The colour loss of a config: `loss(out, L, ab) → (value, decoded ab, metrics)`.

  `out`: the generator's training output (ab [B,H,W,2] or logits [B,H,W,K]); `L`, `ab`: the
  batch (normalised). `class_weights` [K]: rebalancing weights (None = uniform); they are a
  constant of the compiled step. Metrics: float32 scalars `g_l1` (always, on the decoded ab),
  `g_ce` (classification), `g_colorfulness_gap` (if that term is on).
  """

  def __init__(self, config, class_weights: np.ndarray | None = None):
    c = config.loss
    self.config = config
    self.kind = c.get("kind", "l1")
    self.l1_weight = float(c.l1_weight)
    self.class_weight = float(c.get("class_weight", 1.0))
    self.colorfulness_weight = float(c.get("colorfulness_weight", 0.0))
    self.soft_sigma = float(c.get("soft_sigma", ab_bins.SOFT_SIGMA))
    if self.kind == "classification" and class_weights is None:
      class_weights = np.ones(ab_bins.num_bins(), np.float32)
    self.class_weights = None if class_weights is None else np.asarray(class_weights, np.float32)
    self.local_encoding = True   # read when the step is traced; benchmarks/vivid_step.py compares

  def decode(self, out: jax.Array) -> jax.Array:
    return decode(out, self.config)

  def __call__(self, out, L, ab):
    ab = ab.astype(jnp.float32)
    fake = self.decode(out)
    m = {"g_l1": l1(fake, ab)}
    loss = self.l1_weight * m["g_l1"]
    if self.kind == "classification":
      m["g_ce"] = rebalanced_cross_entropy(out, ab, self.class_weights, self.soft_sigma,
                                           self.local_encoding)
      loss = loss + self.class_weight * m["g_ce"]
    if self.colorfulness_weight:
      m["g_colorfulness_gap"] = colorfulness_gap(L, fake, ab)
      loss = loss + self.colorfulness_weight * m["g_colorfulness_gap"]
    return loss, fake, m


def class_weights(config, prior: np.ndarray) -> np.ndarray:
  """Rebalancing weights [K] of a config (its λ and σ) for a class prior [K]."""
  return ab_bins.rebalance_weights(prior, float(config.loss.get("rebalance_lambda",
                                                                ab_bins.REBALANCE_LAMBDA)),
                                   float(config.loss.get("prior_sigma", ab_bins.PRIOR_SIGMA)))
