"""Training: states, losses, the jitted GAN step, and the train-and-validate loop.

One readable loop, top to bottom: build data and models → restore the latest checkpoint if
any → for each step a jitted, donating `train_step(state, batch)` → per epoch the validation
L1 and a checkpoint. Data parallel over all devices with `jax.jit` + `NamedSharding` (batch
split on the mesh's `data` axis, state replicated); BatchNorm statistics are then global.
"""
from __future__ import annotations

import functools
import json
import logging
import math
import os
import signal
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec as P

from colorjax import checkpoints, config_lib, models
from colorjax.state import GANState, NetState, abstract_state, init_state, optimizers
from colorjax.data import pipeline, sources
from colorjax.logs import MetricLogger


class NonFiniteLossError(FloatingPointError):
  """A loss became NaN/inf; the run stops and keeps its last good checkpoint."""


def bce(logits: jax.Array, target: float) -> jax.Array:
  """Mean binary cross-entropy with logits against a constant label (1 real, 0 fake)."""
  return optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, target)).mean()


def train_step(state: GANState, batch: dict, *, g_model, d_model, tx_g, tx_d, l1_weight: float,
               adversarial: bool = True) -> tuple[GANState, dict]:
  """One pix2pix update: D on real vs fake (loss halved), then G on BCE(D(fake), 1) + λ·L1.

  `batch`: {"L": [B,H,W,1], "ab": [B,H,W,2]} in [-1, 1]. G runs forward once; its vjp carries
  the gradient of the G loss back after D has been updated (as in pix2pix's PyTorch code).
  With `adversarial=False` (warm-up) only G is trained, on L1 alone. Returns float32 scalars.
  """
  L, ab = batch["L"], batch["ab"]

  def g_forward(params):
    fake, mut = g_model.apply({"params": params, "batch_stats": state.g.batch_stats}, L,
                              train=True, mutable=["batch_stats"])
    return fake, mut["batch_stats"]

  fake, g_vjp, g_stats = jax.vjp(g_forward, state.g.params, has_aux=True)
  d, metrics = state.d, {}

  def d_apply(params, stats, ab_in):
    logits, mut = d_model.apply({"params": params, "batch_stats": stats}, L, ab_in, train=True,
                                mutable=["batch_stats"])
    return logits, mut["batch_stats"]

  if adversarial:
    def d_loss_fn(params):
      real, stats = d_apply(params, d.batch_stats, ab)
      fake_logits, stats = d_apply(params, stats, jax.lax.stop_gradient(fake))
      return 0.5 * (bce(real, 1.0) + bce(fake_logits, 0.0)), stats

    (d_loss, d_stats), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(d.params)
    updates, d_opt = tx_d.update(d_grads, d.opt_state, d.params)
    d = NetState(optax.apply_updates(d.params, updates), d_stats, d_opt)
    metrics["d_loss"] = d_loss

  def g_loss_fn(fake_ab):
    l1 = jnp.abs(fake_ab - ab).mean()
    if not adversarial:
      return l1_weight * l1, (l1, jnp.zeros(()), d.batch_stats)
    logits, stats = d_apply(d.params, d.batch_stats, fake_ab)
    adv = bce(logits, 1.0)
    return adv + l1_weight * l1, (l1, adv, stats)

  (g_loss, (l1, adv, d_stats)), dfake = jax.value_and_grad(g_loss_fn, has_aux=True)(fake)
  (g_grads,) = g_vjp(dfake)
  updates, g_opt = tx_g.update(g_grads, state.g.opt_state, state.g.params)
  g = NetState(optax.apply_updates(state.g.params, updates), g_stats, g_opt)
  d = d.replace(batch_stats=d_stats)
  metrics.update(g_loss=g_loss, g_l1=l1, g_adv=adv)
  return GANState(state.step + 1, g, d), metrics


def eval_step(g_params, g_stats, batch: dict, *, g_model) -> tuple[jax.Array, jax.Array]:
  """Inference-mode prediction and per-image L1 (normalised ab) for a batch."""
  fake = g_model.apply({"params": g_params, "batch_stats": g_stats}, batch["L"], train=False)
  return fake, jnp.abs(fake - batch["ab"]).mean(axis=(1, 2, 3))


class Trainer:
  """The compiled functions and shardings of a run: built once from a config."""

  def __init__(self, config, mesh: jax.sharding.Mesh | None = None):
    self.config = config
    self.g_model, self.d_model = models.build_models(config)
    self.tx_g, self.tx_d = optimizers(config)
    self.mesh = mesh or data_mesh()
    self.replicated = NamedSharding(self.mesh, P())
    self.batch_sharding = NamedSharding(self.mesh, P("data"))
    kw = dict(g_model=self.g_model, d_model=self.d_model, tx_g=self.tx_g, tx_d=self.tx_d,
              l1_weight=float(config.loss.l1_weight))
    jit = functools.partial(jax.jit, in_shardings=(self.replicated, self.batch_sharding),
                            out_shardings=(self.replicated, self.replicated), donate_argnums=0)
    self.gan_step = jit(functools.partial(train_step, **kw, adversarial=True))
    self.warmup_step = jit(functools.partial(train_step, **kw, adversarial=False))
    self.eval_step = jax.jit(functools.partial(eval_step, g_model=self.g_model),
                             in_shardings=(self.replicated, self.replicated, self.batch_sharding),
                             out_shardings=self.batch_sharding)

  def init(self, seed: int) -> GANState:
    init = jax.jit(functools.partial(init_state, self.config), out_shardings=self.replicated)
    if self.config.model.get("encoder_weights"):   # file I/O: not traceable
      return jax.device_put(init_state(self.config, jax.random.key(seed)), self.replicated)
    return init(jax.random.key(seed))

  def abstract_state(self) -> GANState:
    return abstract_state(self.config, self.replicated)

  def shard_batch(self, batch: dict) -> dict:
    """Process-local numpy batch → global jax.Array sharded over the `data` axis."""
    return {k: jax.make_array_from_process_local_data(self.batch_sharding, np.asarray(batch[k]))
            for k in ("L", "ab")}


def data_mesh() -> jax.sharding.Mesh:
  """A 1-D mesh over every device of every process, axis `data` (GSPMD-style Auto axes)."""
  return jax.make_mesh((jax.device_count(),), ("data",),
                       axis_types=(jax.sharding.AxisType.Auto,))


def domain_records(config, domains=None) -> dict[str, sources.Splits]:
  """The split records of each training domain; the mixed model takes an even share of each."""
  domains = list(domains or config.data.domains)
  splits = {d: sources.domain_splits(config.data, d, config.seed) for d in domains}
  if len(domains) > 1 and config.data.get("mixed_equal_size", True):
    # Same number of training images as a single-domain model: 1/k of each domain's train split.
    splits = {d: s._replace(train=s.train[:max(1, len(s.train) // len(domains))])
              for d, s in splits.items()}
  return splits


class _Preemption:
  """Turns SIGTERM/SIGINT into a flag checked between steps (finish the step, save, exit)."""

  def __init__(self):
    self.requested = None

  def __enter__(self):
    self._old = {s: signal.signal(s, self._handler) for s in (signal.SIGTERM, signal.SIGINT)}
    return self

  def _handler(self, signum, frame):
    if self.requested is not None:      # second signal: give up immediately
      raise KeyboardInterrupt
    self.requested = signal.Signals(signum).name
    logging.warning("%s received: finishing this step and writing a checkpoint", self.requested)

  def __exit__(self, *exc):
    for s, h in self._old.items():
      signal.signal(s, h)


def validation_loss(trainer: Trainer, state: GANState, records, config) -> float:
  """Mean L1 between predicted and true normalised ab over the validation records."""
  total, count = 0.0, 0.0
  bs = _eval_batch_size(config)
  for batch in pipeline.eval_batches(records, config.image_size, bs):
    _, l1 = trainer.eval_step(state.g.params, state.g.batch_stats, trainer.shard_batch(batch))
    mask = batch["mask"]
    total += float(np.sum(np.asarray(l1) * mask))
    count += float(mask.sum())
  return total / max(count, 1.0)


def _eval_batch_size(config) -> int:
  n = jax.device_count()
  bs = int(config.data.get("eval_batch_size", config.batch_size))
  return max(n, bs // n * n)


def train_and_evaluate(config, workdir: str) -> dict:
  """Train (or resume) the run in `workdir`; returns the final epoch's summary."""
  config = config_lib.finalize(config)
  config_lib.validate(config)
  if config.debug_nans:
    jax.config.update("jax_debug_nans", True)
  os.makedirs(workdir, exist_ok=True)
  config_json = config.to_json_best_effort(sort_keys=True, indent=2)

  splits = domain_records(config)
  train_records = [s.train for s in splits.values()]
  val_records = [r for s in splits.values() for r in s.val]
  n_train = sum(len(r) for r in train_records)
  steps_per_epoch = n_train // config.batch_size
  if config.max_steps_per_epoch:
    steps_per_epoch = min(steps_per_epoch, config.max_steps_per_epoch)
  if steps_per_epoch < 1:
    raise config_lib.ConfigError(
        f"config.batch_size={config.batch_size} is larger than the {n_train} training images")
  total_steps = steps_per_epoch * config.num_epochs
  warmup_steps = steps_per_epoch * config.pretrain_epochs

  trainer = Trainer(config)
  mngr = checkpoints.manager(workdir)
  local_batch = config.batch_size // jax.process_count()
  dataset = pipeline.train_dataset(train_records, config.image_size, local_batch, config.seed,
                                   config.data.workers, config.data.on_bad_image)
  data_iter = iter(dataset)

  state, start = None, 0
  if mngr.latest_step() is not None:
    start = mngr.latest_step()
    state, data_state, _ = checkpoints.restore(mngr, start, trainer.abstract_state())
    data_iter.set_state(data_state)
    logging.info("resumed %s from step %d", workdir, start)
  else:
    state = trainer.init(config.seed)
    with open(os.path.join(workdir, "config.json"), "w") as f:
      f.write(config_json)

  logger = MetricLogger(workdir, config.batch_size)
  summary = {}
  with _Preemption() as preempt:
    step = start
    epoch_l1, epoch_n, t_epoch = 0.0, 0, time.time()
    pending = None          # (step, metrics) of the previous step, read one step late
    progress = logger.progress(total_steps, start, steps_per_epoch)
    while step < total_steps:
      batch = trainer.shard_batch(next(data_iter))
      fn = trainer.warmup_step if step < warmup_steps else trainer.gan_step
      state, metrics = fn(state, batch)
      step += 1
      if pending is not None:
        epoch_l1, epoch_n = _check_and_log(pending, logger, config, epoch_l1, epoch_n, progress)
      pending = (step, metrics)

      end_of_epoch = step % steps_per_epoch == 0
      mid_epoch_save = config.checkpoint_every_steps and step % config.checkpoint_every_steps == 0
      if end_of_epoch or mid_epoch_save or preempt.requested or step == total_steps:
        epoch_l1, epoch_n = _check_and_log(pending, logger, config, epoch_l1, epoch_n, progress)
        pending = None
        metrics_for_best = None
        if end_of_epoch:
          epoch = step // steps_per_epoch
          val = validation_loss(trainer, state, val_records, config) if val_records else float("nan")
          summary = {"type": "epoch", "epoch": epoch, "step": step,
                     "train_l1": epoch_l1 / max(epoch_n, 1), "val_loss": val,
                     "epoch_time_s": time.time() - t_epoch, "warmup": step <= warmup_steps}
          logger.write(summary)
          metrics_for_best = {checkpoints.VAL_METRIC: val} if math.isfinite(val) else None
          epoch_l1, epoch_n, t_epoch = 0.0, 0, time.time()
        checkpoints.save(mngr, step, state, data_iter.get_state(), config_json, metrics_for_best)
        if preempt.requested:
          progress.close()
          path = os.path.join(mngr.directory, str(step))
          print(f"{preempt.requested}: checkpoint written at step {step} to {path}; "
                "run the same command again to resume", flush=True)
          logger.close()
          return {"preempted": True, "step": step}
    progress.close()
  logger.close()
  return summary


def _check_and_log(pending, logger, config, epoch_l1, epoch_n, progress):
  step, metrics = pending
  values = {k: float(v) for k, v in jax.device_get(metrics).items()}
  bad = [k for k, v in values.items() if not math.isfinite(v)]
  if bad:
    raise NonFiniteLossError(
        f"non-finite {', '.join(bad)} at step {step} ({values}); stopping. The last good "
        "checkpoint is kept; try a lower learning rate or config.debug_nans=True to locate it")
  progress.update(step, values)
  if step % config.log_every_steps == 0:
    logger.write({"type": "step", "step": step, **values, "img_per_s": progress.rate()})
  return epoch_l1 + values["g_l1"], epoch_n + 1
