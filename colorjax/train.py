"""Training: states, losses, the jitted GAN step, and the train-and-validate loop.

One readable loop, top to bottom: build data and models → restore the latest checkpoint if
any → for each step a jitted, donating `train_step(state, batch)` → per epoch the validation
L1 and a checkpoint. Data parallel over all devices with `jax.jit` + `NamedSharding` (batch
split on the mesh's `data` axis, state replicated); BatchNorm statistics are then global.
"""
from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import signal
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec as P

from colorjax import ab_bins, checkpoints, config_lib, distributed, losses, models
from colorjax.state import GANState, NetState, abstract_state, init_state, optimizers
from colorjax.data import decode, pipeline, sources
from colorjax.logs import MetricLogger, read_metrics


PROCESS_STATES = "process_data_states"   # checkpoint `data` item of a multi-process run


class NonFiniteLossError(FloatingPointError):
  """A loss became NaN/inf; the run stops and keeps its last good checkpoint."""


def bce(logits: jax.Array, target: float) -> jax.Array:
  """Mean binary cross-entropy with logits against a constant label (1 real, 0 fake)."""
  return optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, target)).mean()


def train_step(state: GANState, batch: dict, *, g_model, d_model, tx_g, tx_d,
               colour_loss: losses.ColourLoss, adversarial: bool = True) -> tuple[GANState, dict]:
  """One pix2pix update: D on real vs fake (loss halved), then G on BCE(D(fake), 1) + the
  colour loss of `config.loss` (`colorjax.losses`; the recipe: λ·L1 with λ = 100).

  `batch`: {"L": [B,H,W,1], "ab": [B,H,W,2]} in [-1, 1], and "hints" [B,H,W,3] for a hint
  model (G's input only; D still judges ab given L). G runs forward once (its raw head: ab,
  or bin logits for the classification head); D sees the decoded ab. G's vjp carries the
  gradient of the G loss back after D has been updated (as in pix2pix's PyTorch code).
  With `adversarial=False` (warm-up) only G is trained, on the colour loss alone. Returns
  float32 scalars.
  """
  L, ab, hints = batch["L"], batch["ab"], batch.get("hints")

  def g_forward(params):
    out, mut = g_model.apply({"params": params, "batch_stats": state.g.batch_stats}, L,
                             hints=hints, train=True, return_logits=True,
                             mutable=["batch_stats"])
    return out, mut["batch_stats"]

  out, g_vjp, g_stats = jax.vjp(g_forward, state.g.params, has_aux=True)
  d, metrics = state.d, {}

  def d_apply(params, stats, ab_in):
    logits, mut = d_model.apply({"params": params, "batch_stats": stats}, L, ab_in, train=True,
                                mutable=["batch_stats"])
    return logits, mut["batch_stats"]

  if adversarial:
    fake = jax.lax.stop_gradient(colour_loss.decode(out))

    def d_loss_fn(params):
      real, stats = d_apply(params, d.batch_stats, ab)
      fake_logits, stats = d_apply(params, stats, fake)
      return 0.5 * (bce(real, 1.0) + bce(fake_logits, 0.0)), stats

    (d_loss, d_stats), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(d.params)
    updates, d_opt = tx_d.update(d_grads, d.opt_state, d.params)
    d = NetState(optax.apply_updates(d.params, updates), d_stats, d_opt)
    metrics["d_loss"] = d_loss

  def g_loss_fn(out):
    colour, fake_ab, parts = colour_loss(out, L, ab)
    if not adversarial:
      return colour, (parts, jnp.zeros(()), d.batch_stats)
    logits, stats = d_apply(d.params, d.batch_stats, fake_ab)
    adv = bce(logits, 1.0)
    return adv + colour, (parts, adv, stats)

  (g_loss, (parts, adv, d_stats)), dout = jax.value_and_grad(g_loss_fn, has_aux=True)(out)
  (g_grads,) = g_vjp(dout)
  updates, g_opt = tx_g.update(g_grads, state.g.opt_state, state.g.params)
  g = NetState(optax.apply_updates(state.g.params, updates), g_stats, g_opt)
  d = d.replace(batch_stats=d_stats)
  metrics.update(g_loss=g_loss, g_adv=adv, **parts)
  return GANState(state.step + 1, g, d), metrics


def eval_step(g_params, g_stats, batch: dict, *, g_model) -> tuple[jax.Array, jax.Array]:
  """Inference-mode prediction and per-image L1 (normalised ab) for a batch (its "hints", if
  any, go to G)."""
  fake = g_model.apply({"params": g_params, "batch_stats": g_stats}, batch["L"],
                       hints=batch.get("hints"), train=False)
  return fake, jnp.abs(fake - batch["ab"]).mean(axis=(1, 2, 3))


class Trainer:
  """The compiled functions and shardings of a run: built once from a config."""

  def __init__(self, config, mesh: jax.sharding.Mesh | None = None,
               ab_prior: np.ndarray | None = None):
    """`ab_prior` [K]: the training images' a*b* bin prior for the classification loss's
    rebalancing (`ab_bins.load_or_compute_prior`); None = uniform weights (no rebalancing)."""
    self.config = config
    self.g_model, self.d_model = models.build_models(config)
    self.tx_g, self.tx_d = optimizers(config)
    self.mesh = mesh or data_mesh()
    self.replicated = NamedSharding(self.mesh, P())
    self.batch_sharding = NamedSharding(self.mesh, P("data"))
    weights = None if ab_prior is None else losses.class_weights(config, ab_prior)
    self.colour_loss = losses.ColourLoss(config, weights)
    kw = dict(g_model=self.g_model, d_model=self.d_model, tx_g=self.tx_g, tx_d=self.tx_d,
              colour_loss=self.colour_loss)
    jit = functools.partial(jax.jit, in_shardings=(self.replicated, self.batch_sharding),
                            out_shardings=(self.replicated, self.replicated), donate_argnums=0)
    self.gan_step = jit(functools.partial(train_step, **kw, adversarial=True))
    self.warmup_step = jit(functools.partial(train_step, **kw, adversarial=False))
    self.eval_step = jax.jit(functools.partial(eval_step, g_model=self.g_model),
                             in_shardings=(self.replicated, self.replicated, self.batch_sharding),
                             # l1 replicated: readable on every process of a multi-host run
                             out_shardings=(self.batch_sharding, self.replicated))

  def init(self, seed: int) -> GANState:
    """Fresh state from `seed`, replicated over the mesh.

    Initial weights are drawn with the "rbg" PRNG: XLA compiles it ~3× faster than threefry
    on CPU (the init program is otherwise the slowest compile of a run). Its values can
    differ between backends; training itself uses no randomness beyond the data order.
    """
    key = jax.random.key(seed, impl="rbg")
    if self.config.model.get("encoder_weights"):   # file I/O: not traceable
      return jax.device_put(init_state(self.config, key), self.replicated)
    init = jax.jit(functools.partial(init_state, self.config), out_shardings=self.replicated)
    return init(key)

  def abstract_state(self) -> GANState:
    return abstract_state(self.config, self.replicated)

  def shard_batch(self, batch: dict, whole: bool = False) -> dict:
    """Process-local numpy batch → global jax.Array sharded over the `data` axis.

    `whole=False`: each process holds its own part (training; the global batch is their
    concatenation). `whole=True`: every process holds the same whole global batch (evaluation).
    """
    def put(x):
      x = np.asarray(x)
      return jax.make_array_from_process_local_data(self.batch_sharding, x,
                                                    x.shape if whole else None)
    return {k: put(batch[k]) for k in ("L", "ab", "hints") if k in batch}


def data_mesh() -> jax.sharding.Mesh:
  """A 1-D mesh over every device of every process, axis `data` (GSPMD-style Auto axes)."""
  return jax.make_mesh((jax.device_count(),), ("data",),
                       axis_types=(jax.sharding.AxisType.Auto,))


def domain_records(config, domains=None) -> dict[str, sources.Splits]:
  """The split records of each training domain; the mixed model takes an even share of each."""
  domains = list(domains or config.data.domains)
  splits = {d: sources.domain_splits(config.data, d, config.seed) for d in domains}
  if len(splits) > 1 and config.data.get("mixed_equal_size", True):
    # Same number of training images as a single-domain model: 1/k of each domain's train split.
    splits = {d: s._replace(train=s.train[:max(1, len(s.train) // len(splits))])
              for d, s in splits.items()}
  return splits


def schedule(config, n_train: int) -> tuple[int, int]:
  """(steps per epoch, total steps) of a run on `n_train` training images.

  An epoch is one pass over the images unless `config.steps_per_epoch` fixes its length (the
  data stream repeats; validation and a checkpoint end each epoch either way).
  """
  per_epoch = config.get("steps_per_epoch") or n_train // config.batch_size
  if config.max_steps_per_epoch:
    per_epoch = min(per_epoch, config.max_steps_per_epoch)
  return per_epoch, per_epoch * config.num_epochs


def screen_records(config, splits: dict[str, sources.Splits],
                   cache_path: str | None = None) -> tuple[dict[str, sources.Splits], dict]:
  """Drop unusable and greyscale image files from each domain's train and validation records.

  Every file is decoded once up front in this process (cached in `cache_path` by path, mtime
  and size, so a resume does not decode again). Each skipped file gets one log line naming it
  and the reason. With `config.data.on_bad_image="error"` the first unusable file raises
  BadImage instead; greyscale files (no colour to learn) are skipped in both modes. The test
  split is left alone: evaluation masks unusable images itself, and the split must not
  depend on this scan. Returns the screened splits and {domain: {"bad_images", "grey_images"}}.
  """
  out, counts = {}, {}
  for domain, split in splits.items():
    files = [r[1] for r in (*split.train, *split.val) if r[0] == "file"]
    if not files:
      out[domain] = split
      continue
    status = decode.scan_files(files, config.image_size, cache_path)
    bad = [why for st, why in status.values() if st == "bad"]
    grey = [why for st, why in status.values() if st == "grey"]
    if bad and config.data.on_bad_image == "error":
      raise decode.BadImage(f"{bad[0]} (config.data.on_bad_image='error'; 'skip' leaves such "
                            "files out)")
    for why in bad + grey:
      logging.warning("skipping %s", why)
    keep = lambda records: [r for r in records if r[0] != "file" or status[r[1]][0] == "ok"]
    out[domain] = split._replace(train=keep(split.train), val=keep(split.val))
    counts[domain] = {"bad_images": len(bad), "grey_images": len(grey)}
    if not out[domain].train:
      key = sources.FOLDER_DOMAINS.get(domain, "")
      where = f"config.data.{key}={config.data.get(key)}" if key else f"domain {domain}"
      raise sources.DataError(
          f"{where}: no usable training image ({len(files)} checked: {len(bad)} unusable, "
          f"{len(grey)} greyscale; see the log lines above)")
    if bad or grey:
      logging.warning("%s: skipped %d unusable and %d greyscale of %d images", domain, len(bad),
                      len(grey), len(files))
  return out, counts


class _Preemption:
  """Turns SIGTERM/SIGINT into a flag checked between steps (finish the step, save, exit).

  A second signal raises KeyboardInterrupt at once (no checkpoint; the previous one is kept).
  """

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


@jax.jit
def _all_finite(tree) -> jax.Array:
  return jnp.all(jnp.stack([jnp.isfinite(x).all() for x in jax.tree.leaves(tree)]))


def validation_loss(trainer: Trainer, state: GANState, records, config) -> float:
  """Mean L1 between predicted and true normalised ab over the validation records.

  A hint model is scored on the task it is trained for: each validation image gets simulated
  hints from the training distribution (fixed per image; one in eight gets none). Measured on
  three seeds (README, "A hint-conditioned model"), the steps this keeps follow hints better
  than those kept by the automatic-mode score, and are no worse without hints on average.
  """
  total, count = 0.0, 0.0
  bs = _eval_batch_size(config)
  hints = bool(config.model.get("hints", False))
  for batch in pipeline.eval_batches(records, config.image_size, bs, hints=hints):
    _, l1 = trainer.eval_step(state.g.params, state.g.batch_stats,
                              trainer.shard_batch(batch, whole=True))
    mask = batch["mask"]
    total += float(np.sum(np.asarray(l1) * mask))
    count += float(mask.sum())
  return total / max(count, 1.0)


SAMPLE_IMAGES = 4           # validation images whose first-epoch colourisation is kept


def samples_path(workdir: str, epoch: int) -> str:
  return os.path.join(workdir, "samples", f"epoch_{epoch:04d}.npz")


def save_epoch_samples(trainer: Trainer, state: GANState, records, config, workdir: str,
                       epoch: int) -> None:
  """Keep this epoch's predictions for the first SAMPLE_IMAGES validation images (automatic
  mode) in `samples/epoch_NNNN.npz`: "L", "ab" (predicted), "ab_true" as float16 normalised
  [k,S,S,·], "image" (names). The study's report sets the first epoch's next to the selected
  checkpoint's (the paper's Figure 3). Saved instead of keeping the first epoch's checkpoint:
  a few hundred KB rather than the whole G+D+Adam state, and no change to which checkpoints
  are kept. Written atomically; a resumed epoch rewrites the same values. Single-process runs
  only (the prediction is sharded over the processes of a multi-host run).
  """
  if jax.process_count() > 1:
    return
  from colorjax import evaluate
  batch = next(pipeline.eval_batches(list(records[:SAMPLE_IMAGES]), config.image_size,
                                     _eval_batch_size(config)))
  fake, _ = trainer.eval_step(state.g.params, state.g.batch_stats,
                              trainer.shard_batch(batch, whole=True))
  keep = np.asarray(batch["mask"]) > 0
  names = [evaluate.record_name(records[int(i)]) for i in np.asarray(batch["index"])[keep]]
  path = samples_path(workdir, epoch)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = path + ".tmp.npz"
  np.savez_compressed(tmp, L=np.asarray(batch["L"])[keep].astype(np.float16),
                      ab=np.asarray(fake)[keep].astype(np.float16),
                      ab_true=np.asarray(batch["ab"])[keep].astype(np.float16),
                      image=np.array(names))
  os.replace(tmp, path)


def _eval_batch_size(config) -> int:
  n = jax.device_count()
  bs = int(config.data.get("eval_batch_size", config.batch_size))
  return max(n, bs // n * n)


def train_and_evaluate(config, workdir: str) -> dict:
  """Train (or resume) the run in `workdir`; returns the final epoch's summary.

  Killed at any moment (even SIGKILL during a checkpoint write), the same call continues from
  the newest readable checkpoint with the data iterator where it was, and ends with the
  parameters an uninterrupted run would have (bit for bit on CPU). SIGTERM/SIGINT finish the
  step, write a checkpoint and return {"preempted": True, "step": ...}. A non-finite loss or
  parameter raises NonFiniteLossError before anything non-finite is saved.
  """
  config = config_lib.finalize(config)
  config_lib.validate(config)
  if config.debug_nans:
    jax.config.update("jax_debug_nans", True)
  os.makedirs(workdir, exist_ok=True)
  config_json = config.to_json_best_effort(sort_keys=True, indent=2)
  distributed.check_same(config_json)     # several processes: same config, code and devices

  with _Preemption() as preempt, contextlib.ExitStack() as cleanup:
    # Data first: a missing folder or a folder of broken files fails before any compilation.
    # Only the images this model trains on are screened (the mixed model's shares, not all).
    splits, data_counts = screen_records(config, domain_records(config),
                                         os.path.join(workdir, decode.SCAN_CACHE))
    train_records = [s.train for s in splits.values()]
    val_records = [r for s in splits.values() for r in s.val]
    n_train = sum(len(r) for r in train_records)
    steps_per_epoch, total_steps = schedule(config, n_train)
    if steps_per_epoch < 1:
      raise config_lib.ConfigError(
          f"config.batch_size={config.batch_size} is larger than the {n_train} training images")
    warmup_steps = steps_per_epoch * config.pretrain_epochs

    ab_prior = None
    if config.loss.get("kind", "l1") == "classification":   # once per run; a resume reads it
      ab_prior = ab_bins.load_or_compute_prior(
          workdir, [r for records in train_records for r in records], config.image_size)
    trainer = Trainer(config, ab_prior=ab_prior)
    mngr = checkpoints.manager(workdir)
    local_batch = config.batch_size // jax.process_count()
    dataset = pipeline.train_dataset(train_records, config.image_size, local_batch, config.seed,
                                     config.data.workers, config.data.on_bad_image,
                                     shard_index=jax.process_index(),
                                     shard_count=jax.process_count(),
                                     hints=bool(config.model.get("hints", False)),
                                     crop_scale=float(config.data.get("crop_scale", 1.0)))
    # Closed on every exit: grain's worker processes and shared memory are released.
    data_iter = cleanup.enter_context(contextlib.closing(iter(dataset)))

    restored = checkpoints.restore_latest(mngr, trainer.abstract_state())
    if restored is not None:
      state, data_state, start = restored
      saved = _saved_config(mngr, start)
      _check_same_workers(saved, mngr, start, config)
      data_iter.set_state(_own_data_state(data_state, mngr, start))
      _warn_config_changes(saved, config)
      _drop_metrics_after(workdir, start)   # steps logged after that checkpoint are redone
      logging.warning("resuming %s from step %d", workdir, start)
    else:
      state, start = trainer.init(config.seed), 0
      if distributed.is_primary():
        with open(os.path.join(workdir, "config.json"), "w") as f:
          f.write(config_json)

    if start >= total_steps:      # finished already: nothing to train, nothing to log
      epochs = [r for r in read_metrics(workdir) if r.get("type") == "epoch"]
      return epochs[-1] if epochs else {"type": "epoch", "step": start}

    logger = MetricLogger(workdir, config.batch_size)
    cleanup.callback(logger.close)
    n_bad = sum(c["bad_images"] for c in data_counts.values())
    n_grey = sum(c["grey_images"] for c in data_counts.values())
    logger.write({"type": "data", "step": start, "train_images": n_train,
                  "val_images": len(val_records), "steps_per_epoch": steps_per_epoch,
                  "total_steps": total_steps, "bad_images": n_bad, "grey_images": n_grey,
                  "domains": data_counts})
    summary = {}
    step = start
    epoch_l1, epoch_n, t_epoch = 0.0, 0, time.time()
    pending = None          # (step, metrics) of the previous step, read one step late
    progress = logger.progress(total_steps, start, steps_per_epoch)
    stop = distributed.StopRequest(os.path.abspath(workdir))   # all processes stop together
    cleanup.callback(progress.close)    # on an error too: its message starts on a fresh line
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
      stopping = stop.should_stop(step, preempt.requested is not None)
      if end_of_epoch or mid_epoch_save or stopping or step == total_steps:
        epoch_l1, epoch_n = _check_and_log(pending, logger, config, epoch_l1, epoch_n, progress)
        pending = None
        if not bool(_all_finite((state.g.params, state.g.batch_stats, state.d.params,
                                 state.d.batch_stats))):
          raise NonFiniteLossError(
              f"non-finite parameters after step {step}; stopping without saving them. The "
              "last good checkpoint is kept; try a lower learning rate or "
              "config.debug_nans=True to locate it")
        metrics_for_best = None
        if end_of_epoch:
          epoch = step // steps_per_epoch
          val = validation_loss(trainer, state, val_records, config) if val_records else float("nan")
          summary = {"type": "epoch", "epoch": epoch, "step": step,
                     "train_l1": epoch_l1 / max(epoch_n, 1), "val_loss": val,
                     "epoch_time_s": time.time() - t_epoch, "warmup": step <= warmup_steps,
                     "bad_images": n_bad, "grey_images": n_grey}
          logger.write(summary)
          if epoch == 1 and val_records:
            save_epoch_samples(trainer, state, val_records, config, workdir, epoch)
          metrics_for_best = {checkpoints.VAL_METRIC: val} if math.isfinite(val) else None
          epoch_l1, epoch_n, t_epoch = 0.0, 0, time.time()
        checkpoints.save(mngr, step, state, _data_states(data_iter), config_json, metrics_for_best)
        if stopping:
          progress.close()
          path = os.path.join(os.fspath(mngr.directory), str(step))
          if distributed.is_primary():
            print(f"{preempt.requested or 'stop requested by another process'}: checkpoint "
                  f"written at step {step} to {path}; run the same command again to resume",
                  flush=True)
          return {"preempted": True, "step": step}
    progress.close()
  return summary


def _data_states(data_iter) -> dict:
  """The data position(s) to checkpoint: the iterator's state, or every process's under
  PROCESS_STATES (orbax writes JSON items from process 0 only)."""
  states = distributed.all_gather("data_state", data_iter.get_state())
  return states[0] if len(states) == 1 else {PROCESS_STATES: states}


def _own_data_state(saved: dict, mngr, step: int) -> dict:
  """This process's data position from a checkpoint written by the same number of processes."""
  n = jax.process_count()
  states = saved.get(PROCESS_STATES, [saved])
  if len(states) != n:
    raise checkpoints.CheckpointError(
        f"{mngr.directory}/{step} holds the data positions of {len(states)} process(es) but "
        f"this run has {n}: resume it with {len(states)} (each process reads its own share of "
        "the data), or start a new --workdir")
  return states[jax.process_index()]


def _saved_config(mngr, step: int) -> dict | None:
  """The config a checkpoint was written with; None for an old or damaged config item."""
  try:
    return checkpoints.restore_config(mngr, step)
  except Exception:
    return None


def _check_same_workers(saved: dict | None, mngr, step: int, config) -> None:
  """The saved data position is grain's state of a pipeline with that many worker processes;
  another count cannot read it."""
  old = ((saved or {}).get("data") or {}).get("workers", config.data.workers)
  if old != config.data.workers:
    raise config_lib.ConfigError(
        f"config.data.workers={config.data.workers}: {mngr.directory}/{step} holds the data "
        f"position of a pipeline with workers={old}; resume with --config.data.workers={old} "
        "(or start a new --workdir)")


def _warn_config_changes(saved: dict | None, config) -> None:
  """Log the options that differ from the checkpoint's config (a resume keeps going anyway)."""
  if saved is None:         # nothing to compare
    return
  old = _flatten(saved)
  new = _flatten(json.loads(config.to_json_best_effort()))
  changed = [f"{k} ({old.get(k)!r} -> {new.get(k)!r})" for k in sorted(set(old) | set(new))
             if old.get(k) != new.get(k) and k != "num_epochs"]
  if changed:
    logging.warning("resuming with a config that differs from the checkpoint's: %s",
                    "; ".join(changed))


def _flatten(d: dict, prefix: str = "") -> dict:
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def _drop_metrics_after(workdir: str, step: int) -> None:
  """Remove metrics.jsonl records past `step` (and a line cut by a kill) before a resume."""
  path = os.path.join(workdir, "metrics.jsonl")
  if jax.process_index() != 0 or not os.path.exists(path):
    return
  kept = []
  with open(path) as f:
    for line in f:
      try:
        record = json.loads(line)
      except json.JSONDecodeError:
        continue
      if record.get("step", 0) <= step:
        kept.append(line if line.endswith("\n") else line + "\n")
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    f.writelines(kept)
  os.replace(tmp, path)


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
