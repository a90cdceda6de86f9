"""Checkpoint I/O (orbax): train states, the data iterator's position, the config, metrics.

Layout: `WORKDIR/checkpoints/<step>/{state, data, config}`. Kept: the two newest and the best
by validation loss — orbax's `best_fn` + `max_to_keep` alone can delete the newest, which
would lose work on resume, so we combine preservation policies explicitly.
A checkpoint directory is self-contained: inference needs nothing else.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import threading
import time
from typing import Any

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint.checkpoint_managers import preservation_policy as pp

VAL_METRIC = "val_loss"


class CheckpointError(RuntimeError):
  """A checkpoint that cannot be used (missing, corrupt, or for a different model)."""


class CorruptCheckpoint(CheckpointError):
  """A checkpoint directory that cannot be read (partial, truncated or deleted files)."""


class _DropUntrackedMetricWarning(logging.Filter):
  """orbax warns on every checkpoint saved without metrics (our mid-epoch ones): noise."""

  def filter(self, record: logging.LogRecord) -> bool:
    return "did not provide metrics" not in record.getMessage()


class _DropReadOnlyNotice(logging.Filter):
  """orbax logs 'Given directory is read only' for every read-only manager (each eval and
  colorize opens one on purpose); the other read-only warning is avoided in `manager`."""

  def filter(self, record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("Given directory is read only")


logging.getLogger("absl").addFilter(_DropUntrackedMetricWarning())
logging.getLogger("absl").addFilter(_DropReadOnlyNotice())


def _handlers() -> dict:
  # Registered up front so that item metadata (shapes) can be read before any restore.
  return {"state": ocp.StandardCheckpointHandler(), "data": ocp.JsonCheckpointHandler(),
          "config": ocp.JsonCheckpointHandler()}


def manager(workdir: str, *, read_only: bool = False, keep_latest: int = 2,
            this_process_only: bool = False) -> ocp.CheckpointManager:
  """The run's CheckpointManager (synchronous saves: a finished `save` is on disk).

  In a multi-process run every process makes the same calls (orbax synchronises them);
  `this_process_only` makes one that this process uses alone (reading for inference).
  """
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
      cleanup_tmp_directories=not read_only,
      multiprocessing_options=ocp.options.MultiprocessingOptions(
          primary_host=jax.process_index(), active_processes={jax.process_index()})
      if this_process_only and jax.process_count() > 1 else ocp.options.MultiprocessingOptions(),
      # read-only: orbax forces save_interval_steps to 0 and warns unless it is 0 already.
      **({"save_interval_steps": 0} if read_only else {}))
  # cleanup_tmp_directories: a save killed half-way leaves `<step>.orbax-checkpoint-tmp-*`;
  # orbax never lists those as steps, and the next writer deletes them.
  return ocp.CheckpointManager(directory, options=options, item_handlers=_handlers())


def save(mngr: ocp.CheckpointManager, step: int, state: Any, data_state: dict, config_json: str,
         metrics: dict | None = None) -> None:
  """Write one checkpoint; `metrics` (with `val_loss`) mark it for best-checkpoint selection.

  A failed write (disk full, no permission, ...) raises CheckpointError; orbax writes into a
  temporary directory and renames it when complete, so earlier checkpoints stay intact.
  """
  quiet = _NoTraceback()
  absl_logger = logging.getLogger("absl")
  absl_logger.addFilter(quiet)
  old_hook, threading.excepthook = threading.excepthook, quiet.thread_hook
  # tensorstore callbacks that fire on a closed asyncio loop report through these hooks.
  old_sys_hooks = sys.excepthook, sys.unraisablehook
  sys.excepthook, sys.unraisablehook = quiet.sys_hook, quiet.unraisable_hook
  try:
    mngr.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        data=ocp.args.JsonSave(data_state),
        config=ocp.args.JsonSave(json.loads(config_json))),
        metrics=metrics, force=True)
    mngr.wait_until_finished()
  except Exception as e:    # orbax/tensorstore raise many types (OSError, ValueError, ...)
    kept = sorted(s for s in mngr.all_steps() if s != step)
    raise CheckpointError(
        f"writing the checkpoint of step {step} to {mngr.directory} failed ({_first_line(e)}); "
        f"earlier checkpoints {kept or 'none'} are intact") from None
  finally:
    threading.excepthook = old_hook
    sys.excepthook, sys.unraisablehook = old_sys_hooks
    absl_logger.removeFilter(quiet)


class _NoTraceback(logging.Filter):
  """While saving: orbax's writer threads log and re-raise a failed write with a traceback;
  `save` reports it as one line, so keep their log line but drop the traceback."""

  def filter(self, record: logging.LogRecord) -> bool:
    record.exc_info, record.exc_text = None, None
    return True

  def thread_hook(self, args) -> None:
    logging.getLogger("absl").debug("checkpoint writer thread failed: %s", args.exc_value)

  def sys_hook(self, exc_type, exc, tb) -> None:
    logging.getLogger("absl").debug("checkpoint writer callback failed: %s", exc)

  def unraisable_hook(self, unraisable) -> None:
    logging.getLogger("absl").debug("checkpoint writer callback failed: %s", unraisable.exc_value)


def _first_line(e: BaseException) -> str:
  lines = [l.strip() for l in str(e).splitlines() if l.strip()]
  text = lines[0].split(" See full TensorStore details")[0] if lines else ""
  return f"{type(e).__name__}: {text[:240]}" if text else type(e).__name__


def _path_str(path) -> str:
  parts = []
  for k in path:
    for attr in ("key", "name", "idx"):
      if hasattr(k, attr):
        parts.append(str(getattr(k, attr)))
        break
  return "/".join(parts)


def check_compatible(mngr: ocp.CheckpointManager, step: int, abstract_state: Any) -> None:
  """Compare the stored arrays' shapes with `abstract_state` before restoring anything.

  Raises CheckpointError naming the first mismatching parameter and both shapes (a config
  whose model differs from the checkpoint's), or CorruptCheckpoint if the metadata is unreadable.
  """
  try:
    stored = mngr.item_metadata(step)["state"]
    if stored is None:
      raise ValueError("no state metadata")
    have = {_path_str(p): tuple(v.shape) for p, v in jax.tree_util.tree_flatten_with_path(stored)[0]}
  except Exception as e:
    raise CorruptCheckpoint(f"{mngr.directory}/{step}: unreadable ({_first_line(e)})") from None
  want = {_path_str(p): tuple(v.shape)
          for p, v in jax.tree_util.tree_flatten_with_path(abstract_state)[0]}
  # Parameters first: optimiser moments mirror them and would name a less useful path.
  order = sorted(want, key=lambda k: "/params/" not in f"/{k}/")
  for key in order:
    if key not in have:
      raise CheckpointError(f"{mngr.directory}/{step} was written by a different model: the config "
                            f"has parameter {key} {want[key]} that the checkpoint lacks")
    if have[key] != want[key]:
      raise CheckpointError(f"{mngr.directory}/{step} was written by a different model: parameter "
                            f"{key} has shape {have[key]} in the checkpoint but {want[key]} in the "
                            "config (use the run's own config, or a new --workdir)")
  extra = [k for k in have if k not in want]
  if extra:
    raise CheckpointError(f"{mngr.directory}/{step} was written by a different model: the "
                          f"checkpoint has parameter {extra[0]} {have[extra[0]]} that the config lacks")


def restore(mngr: ocp.CheckpointManager, step: int, abstract_state: Any):
  """(state, data_state, config dict) at `step`; `abstract_state` gives shapes and shardings.

  Raises CheckpointError for a different model, CorruptCheckpoint for unreadable files.
  """
  check_compatible(mngr, step, abstract_state)
  try:
    out = mngr.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state),
        data=ocp.args.JsonRestore(), config=ocp.args.JsonRestore()))
  except Exception as e:
    raise CorruptCheckpoint(f"{mngr.directory}/{step}: unreadable ({_first_line(e)})") from None
  return out["state"], out["data"], out["config"]


def restore_latest(mngr: ocp.CheckpointManager, abstract_state: Any):
  """(state, data_state, step) of the newest readable checkpoint, or None if there is none.

  A corrupt or partial newest checkpoint is reported, moved to `checkpoints_corrupt/` beside
  `checkpoints/` (so a later save of that step can succeed) and the previous one is used.
  """
  for step in sorted(mngr.all_steps(), reverse=True):
    try:
      state, data_state, _ = restore(mngr, step, abstract_state)
      return state, data_state, step
    except CorruptCheckpoint as e:
      moved = _quarantine(mngr, step)
      logging.warning("%s; moved it to %s and trying the previous checkpoint", e, moved)
  return None


def _quarantine(mngr: ocp.CheckpointManager, step: int) -> str:
  from colorjax import distributed
  src = os.path.join(os.fspath(mngr.directory), str(step))
  dst_root = os.path.join(os.path.dirname(os.fspath(mngr.directory)), "checkpoints_corrupt")
  dst = os.path.join(dst_root, f"{step}-{time.strftime('%Y%m%d-%H%M%S')}")
  if distributed.is_primary():    # every process found it unreadable; one moves it
    os.makedirs(dst_root, exist_ok=True)
    shutil.move(src, dst)
  distributed.barrier(f"quarantine-{step}")
  mngr.reload()
  return dst


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

  `step=None` picks the best checkpoint by validation loss (else the latest); if that one is
  unreadable it is reported and the newest readable one is used instead.
  """
  import ml_collections
  from colorjax import state as state_lib
  workdir, path_step = resolve(path)
  mngr = manager(workdir, read_only=True, this_process_only=True)
  steps = mngr.all_steps()
  if not steps:
    raise CheckpointError(f"{workdir}: no checkpoint found")
  explicit = step if step is not None else path_step
  if explicit is not None and explicit not in steps:
    raise CheckpointError(f"{workdir}: no checkpoint at step {explicit} (have {sorted(steps)})")
  first = explicit if explicit is not None else best_step(mngr)
  candidates = [first] if explicit is not None else (
      [first] + sorted((s for s in steps if s != first), reverse=True))
  for i, candidate in enumerate(candidates):
    try:
      config = ml_collections.ConfigDict(restore_config(mngr, candidate))
      # Onto this process's first device, whatever topology wrote it (orbax needs a target
      # sharding to read a checkpoint of several processes or devices).
      sharding = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
      restored, _, _ = restore(mngr, candidate, state_lib.abstract_state(config, sharding))
      return config, {"params": restored.g.params, "batch_stats": restored.g.batch_stats}, candidate
    except CheckpointError as e:
      if explicit is not None or i == len(candidates) - 1:
        raise
      logging.warning("%s; using the previous checkpoint", e)
    except Exception as e:     # unreadable config item
      if explicit is not None or i == len(candidates) - 1:
        raise CorruptCheckpoint(f"{mngr.directory}/{candidate}: unreadable ({_first_line(e)})") from None
      logging.warning("%s/%s: unreadable (%s); using the previous checkpoint", mngr.directory,
                      candidate, _first_line(e))
  raise CheckpointError(f"{workdir}: no readable checkpoint")
