"""Mode dispatch for launch.py: turns user errors into one-line messages and exit code 2."""
from __future__ import annotations

import os
import sys
import traceback

from colorjax import checkpoints, config_lib, distributed, hints, video
from colorjax.data import decode, sources


APP_PACKAGES = ("fastapi", "starlette", "uvicorn", "anyio")   # the `app` extra


def default_workdir(config) -> str:
  return os.path.join("runs", config.get("name", "default"))


def _temporal(flags) -> float | None:
  return getattr(flags, "temporal", None)


def run(mode: str, config, flags) -> int:
  """Run `mode`; returns the process exit code.

  Joins a multi-process run first when the flags (or the cluster) ask for one; there, a
  process that fails tells the others (they stop too), see colorjax.distributed.
  """
  try:
    processes = distributed.join(
        getattr(flags, "coordinator", None), getattr(flags, "num_processes", None),
        getattr(flags, "process_id", None),
        getattr(flags, "heartbeat_timeout", distributed.DEFAULT_HEARTBEAT_TIMEOUT_S), mode)
  except config_lib.ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  if processes < 0:
    print(f"--mode={mode} runs on process 0 only; this process has nothing to do",
          file=sys.stderr)
    return 0
  code = _run_mode(mode, config, flags, multi=processes > 1)
  if code and processes > 1:
    # Often a collective or checkpoint write whose peer died: the heartbeats name it (and
    # exit); otherwise tell the others that this process is stopping.
    distributed.after_error()
    distributed.fail(f"it stopped with exit code {code} (see its output)")
  return code


def _check_workdir(workdir: str) -> None:
  """A run directory, or a path where one can be made: not a file, nor below one."""
  path = os.path.abspath(workdir)
  while not os.path.exists(path) and os.path.dirname(path) != path:
    path = os.path.dirname(path)
  if not os.path.isdir(path):
    raise config_lib.ConfigError(f"--workdir={workdir}: {path} is a file, not a directory")


def _run_mode(mode: str, config, flags, multi: bool) -> int:
  workdir = flags.workdir or default_workdir(config)
  try:
    _check_workdir(workdir)
    if mode == "train":
      from colorjax import train
      train.train_and_evaluate(config, workdir)
      return 0
    if mode == "eval":
      from colorjax import evaluate
      counts = evaluate.parse_hint_counts(flags.hints) if flags.hints else None
      evaluate.evaluate_run(workdir, eval_dirs=flags.eval_dirs or None, step=flags.step,
                            print_summary=True)
      if counts:
        evaluate.evaluate_hints(workdir, counts, eval_dirs=flags.eval_dirs or None,
                                step=flags.step, print_summary=True)
      sequences = [d for d in flags.eval_dirs or () if video.numbered_frames(d)]
      if sequences:      # frame sequences: stability metrics beside ΔE00
        video.evaluate_sequences(workdir, sequences, _temporal(flags), step=flags.step)
      return 0
    if mode == "study":
      from colorjax import study
      study.run_study(config, workdir)
      return 0
    if mode == "colorize":
      from colorjax import inference
      footage = [i for i in flags.input if video.is_footage(i)]
      if footage:        # videos and numbered-frame folders; any other inputs as images
        images = [i for i in flags.input if i not in footage]
        if images and flags.output and video.is_video_file(flags.output):
          raise config_lib.ConfigError(f"--output={flags.output}: a video file, but --input also "
                                       "names images; give a folder for all the outputs")
        code = video.colorize_cli(workdir, footage, flags.output, _temporal(flags),
                                  saturation=flags.saturation, fmt=flags.format, step=flags.step,
                                  hints=getattr(flags, "hints", None), warn_unused=not images)
        if not images:
          return code
        return max(code, inference.colorize_cli(workdir, images, flags.output,
                                                saturation=flags.saturation, fmt=flags.format,
                                                step=flags.step, hints=flags.hints,
                                                other_inputs=footage))
      return inference.colorize_cli(workdir, flags.input, flags.output, saturation=flags.saturation,
                                    fmt=flags.format, step=flags.step,
                                    hints=flags.hints)
    if mode == "serve":
      try:
        from colorjax import app
      except ImportError as e:
        if (e.name or "").split(".")[0] not in APP_PACKAGES:
          raise
        raise config_lib.ConfigError(
            f"--mode=serve needs the app extra ({e.name} is missing): pip install -e '.[app]'"
        ) from None
      return app.serve(workdir, host=flags.host, port=flags.port, step=flags.step)
    raise config_lib.ConfigError(f"--mode={mode!r}: expected one of {', '.join(config_lib.MODES)}")
  except (config_lib.ConfigError, sources.DataError, checkpoints.CheckpointError,
          decode.BadImage, video.VideoError, hints.HintError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  except FloatingPointError as e:   # NonFiniteLossError, or jax_debug_nans (config.debug_nans)
    print(f"error: {str(e).strip().splitlines()[0]}", file=sys.stderr)
    return 1
  except KeyboardInterrupt:         # a second SIGINT/SIGTERM while stopping
    print("interrupted: stopped without writing a checkpoint; the previous one is kept",
          file=sys.stderr)
    return 130
  except Exception:
    if not multi:
      raise
    traceback.print_exc()       # (then `run` waits for the heartbeats' verdict)
    return 1
