"""The benchmarks' training loop: a fixed number of steps, the recipe's model selection.

`train_best` trains one model with the project's Trainer and input pipeline for exactly `steps`
steps and, every `val_every` steps, scores the validation images with `train.validation_loss`
(mean L1 of the decoded a*b*, whatever the loss; `select_by="delta_e"`: their mean ΔE00),
keeping the best-scoring step as the recipe keeps its best epoch. Used by benchmarks/hints.py
and benchmarks/vivid.py, so both select models the same way.
"""
from __future__ import annotations

import functools
import time

import jax
import numpy as np

from colorjax import evaluate, train
from colorjax.data import pipeline


def validation_delta_e(apply, state, records, config) -> float:
  """Mean ΔE00 of the validation images' colours (`evaluate.evaluate_records`), G applied
  with `apply` = `evaluate.generator_apply(config)` (compiled once per run)."""
  variables = {"params": state.g.params, "batch_stats": state.g.batch_stats}
  scores = evaluate.evaluate_records(records, functools.partial(apply, variables),
                                     config.image_size, 16)
  return float(scores["delta_e"].mean())


def train_best(config, records: list[list], val_records: list, steps: int, *,
               l1_only: float = 0.0, val_every: int = 0, ab_prior=None, select_by: str = "l1"):
  """(best state, its data-iterator state, info) after `steps` steps.

  `records`: one record list per domain (drawn evenly). The first `l1_only` fraction of the
  steps is L1-only (the recipe's warm-up), the rest GAN + colour loss. `val_every` = 0 keeps
  the final step. `config.data.crop_scale` sets the training crops. info: {"steps",
  "best_step", "best_val_l1" (the best score, ΔE00 with `select_by="delta_e"`), "val_curve":
  [(step, score)], "select_by", "seconds"} (seconds of the whole loop, validation and
  compilation included).
  """
  trainer = train.Trainer(config, ab_prior=ab_prior)
  it = iter(pipeline.train_dataset(records, config.image_size, config.batch_size, config.seed,
                                   hints=bool(config.model.hints),
                                   crop_scale=float(config.data.get("crop_scale", 1.0))))
  state = trainer.init(config.seed)
  apply = evaluate.generator_apply(config) if select_by == "delta_e" else None
  warmup = int(round(steps * l1_only))
  best, curve = (float("inf"), steps, None, None), []
  t0 = time.time()
  for step in range(steps):
    fn = trainer.warmup_step if step < warmup else trainer.gan_step
    state, metrics = fn(state, trainer.shard_batch(next(it)))
    scored = val_every and ((step + 1) % val_every == 0 or step + 1 == steps)
    if scored:
      val = (train.validation_loss(trainer, state, val_records, config) if select_by == "l1"
             else validation_delta_e(apply, state, val_records, config))
      curve.append((step + 1, val))
      if val < best[0]:           # a copy: the train step donates (reuses) the state's buffers
        best = (val, step + 1, jax.tree.map(np.array, state), it.get_state())
    if scored or (not val_every and (step + 1) % max(1, steps // 5) == 0):
      val_text = f"  val {select_by} {curve[-1][1]:.4f}" if scored else ""
      print(f"{config.name}: step {step + 1}/{steps}  L1 {float(metrics['g_l1']):.4f}"
            f"{val_text}  {time.time() - t0:.0f} s", flush=True)
  if not val_every:
    best = (float("nan"), steps, state, it.get_state())
  info = {"steps": steps, "best_step": best[1], "best_val_l1": best[0], "val_curve": curve,
          "select_by": select_by, "seconds": time.time() - t0}
  return best[2], best[3], info
