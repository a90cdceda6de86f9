"""The training state of a colorjax run: G and D variables and optimiser states.

Separate from the training loop so that inference and evaluation can rebuild the abstract
state of a checkpoint (to restore it) without importing the loop.
"""
from __future__ import annotations

import functools
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax

from colorjax import models


@flax.struct.dataclass
class NetState:
  """One network's trainable state: params, BatchNorm statistics, optimiser state."""
  params: Any
  batch_stats: Any
  opt_state: Any


@flax.struct.dataclass
class GANState:
  """Everything that evolves during training; a pytree, checkpointed as a whole."""
  step: jax.Array
  g: NetState
  d: NetState


def optimizers(config) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
  """Adam for G and D (the study: lr 2e-4, betas (0.5, 0.999))."""
  o = config.optim
  return optax.adam(o.lr_g, o.b1, o.b2), optax.adam(o.lr_d, o.b1, o.b2)


def init_state(config, rng: jax.Array) -> GANState:
  """Fresh G and D variables and optimiser states (float32), optionally an imported encoder."""
  g_model, d_model = models.build_models(config)
  tx_g, tx_d = optimizers(config)
  s = config.image_size
  L, ab = jnp.zeros((1, s, s, 1)), jnp.zeros((1, s, s, 2))
  g_key, d_key = jax.random.split(rng)
  g_vars = g_model.init(g_key, L, train=False)
  d_vars = d_model.init(d_key, L, ab, train=False)
  if config.model.get("encoder_weights"):
    from colorjax.models import weights
    g_vars = weights.load_encoder_weights(g_vars, config.model.encoder_weights)
  return GANState(
      step=jnp.zeros((), jnp.int32),
      g=NetState(g_vars["params"], g_vars["batch_stats"], tx_g.init(g_vars["params"])),
      d=NetState(d_vars["params"], d_vars["batch_stats"], tx_d.init(d_vars["params"])))


def abstract_state(config, sharding=None) -> GANState:
  """Shapes/dtypes (and optionally a sharding) of `init_state(config)`, computing nothing."""
  c = config.copy_and_resolve_references()
  with c.unlocked():
    c.model.encoder_weights = ""
  shapes = jax.eval_shape(functools.partial(init_state, c), jax.random.key(0))
  return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), shapes)


def random_state(config, seed: int = 0) -> GANState:
  """An untrained state without compiling `init_state`: He-normal kernels, unit BatchNorm
  scale and variance, zeros elsewhere (NumPy arrays). For smoke tests and benchmarks of
  inference, where the weights only need to give varied, non-trivial outputs."""
  import numpy as np
  rng = np.random.default_rng(seed)

  def leaf(path, spec):
    names = [getattr(k, "key", getattr(k, "name", "")) for k in path]
    if "params" in names and names[-1] == "kernel":
      fan_in = int(np.prod(spec.shape[:-1]))
      return (rng.standard_normal(spec.shape) * np.sqrt(2.0 / fan_in)).astype(spec.dtype)
    if names[-1] in ("scale", "var"):
      return np.ones(spec.shape, spec.dtype)
    return np.zeros(spec.shape, spec.dtype)

  return jax.tree_util.tree_map_with_path(leaf, abstract_state(config))
