"""Checkpoint I/O (orbax): train states, the data iterator's position, the config, metrics.

Layout: `WORKDIR/checkpoints/<step>/{state, data, config}`. Kept: the two newest and the best
by validation loss — orbax's `best_fn` + `max_to_keep` alone can delete the newest, which
would lose work on resume, so we combine preservation policies explicitly.
A checkpoint directory is self-contained: inference needs nothing else.
"""
from __future__ import annotations

import json
import os
from typing import Any

import orbax.checkpoint as ocp
from orbax.checkpoint.checkpoint_managers import preservation_policy as pp

VAL_METRIC = "val_loss"


class CheckpointError(RuntimeError):
  """A checkpoint that cannot be used (missing, corrupt, or for a different model)."""


def manager(workdir: str, *, read_only: bool = False, keep_latest: int = 2) -> ocp.CheckpointManager:
  """The run's CheckpointManager (synchronous saves: a finished `save` is on disk)."""
  directory = os.path.abspath(os.path.join(workdir, "checkpoints"))
  if read_only and not os.path.isdir(directory):
    raise CheckpointError(f"{workdir}: no checkpoints/ directory (has this run been trained?)")
  policy = pp.AnyPreservationPolicy([
      pp.LatestN(n=keep_latest),
      pp.BestN(get_metric_fn=lambda m: m[VAL_METRIC], reverse=True, n=1,
               keep_checkpoints_without_metrics=False),
  ])
  options = ocp.CheckpointManagerOptions(
      preservation_policy=policy, best_fn=lambda m: m[VAL_METRIC], best_mode="min",
      enable_async_checkpointing=False, create=not read_only, read_only=read_only,
      cleanup_tmp_directories=not read_only)
  return ocp.CheckpointManager(directory, options=options, item_names=("state", "data", "config"))


def save(mngr: ocp.CheckpointManager, step: int, state: Any, data_state: dict, config_json: str,
         metrics: dict | None = None) -> None:
  """Write one checkpoint; `metrics` (with `val_loss`) mark it for best-checkpoint selection."""
  mngr.save(step, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state),
      data=ocp.args.JsonSave(data_state),
      config=ocp.args.JsonSave(json.loads(config_json))),
      metrics=metrics, force=True)
  mngr.wait_until_finished()


def restore(mngr: ocp.CheckpointManager, step: int, abstract_state: Any):
  """(state, data_state, config dict) at `step`; `abstract_state` gives shapes and shardings."""
  out = mngr.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract_state),
      data=ocp.args.JsonRestore(), config=ocp.args.JsonRestore()))
  return out["state"], out["data"], out["config"]


def restore_config(mngr: ocp.CheckpointManager, step: int) -> dict:
  """The config a checkpoint was written with (a plain dict)."""
  return mngr.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))["config"]


def best_step(mngr: ocp.CheckpointManager) -> int | None:
  """The step with the lowest validation loss, else the latest (None if there is none)."""
  return mngr.best_step() if mngr.best_step() is not None else mngr.latest_step()


def resolve(path: str) -> tuple[str, int | None]:
  """(run or checkpoints dir, step or None) for a run dir, its checkpoints/ or one step dir."""
  path = os.path.abspath(path)
  if not os.path.exists(path):
    raise CheckpointError(f"{path}: no such run or checkpoint directory")
  if os.path.isdir(os.path.join(path, "checkpoints")):
    return path, None
  if os.path.basename(path) == "checkpoints":
    return os.path.dirname(path), None
  parent = os.path.dirname(path)
  if os.path.basename(parent) == "checkpoints" and os.path.basename(path).isdigit():
    return os.path.dirname(parent), int(os.path.basename(path))
  raise CheckpointError(f"{path}: not a colorjax run (no checkpoints/ inside)")


def restore_generator(path: str, step: int | None = None):
  """(config, {"params", "batch_stats"} of G, step) from a run or checkpoint directory.

  `step=None` picks the best checkpoint by validation loss (else the latest).
  """
  import ml_collections
  from colorjax import state as state_lib
  workdir, path_step = resolve(path)
  mngr = manager(workdir, read_only=True)
  steps = mngr.all_steps()
  if not steps:
    raise CheckpointError(f"{workdir}: no checkpoint found")
  step = step if step is not None else path_step if path_step is not None else best_step(mngr)
  if step not in steps:
    raise CheckpointError(f"{workdir}: no checkpoint at step {step} (have {sorted(steps)})")
  config = ml_collections.ConfigDict(restore_config(mngr, step))
  abstract = state_lib.abstract_state(config)
  restored, _, _ = restore(mngr, step, abstract)
  return config, {"params": restored.g.params, "batch_stats": restored.g.batch_stats}, step
