"""Mode dispatch for launch.py: turns user errors into one-line messages and exit code 2."""
from __future__ import annotations

import os
import sys

from colorjax import checkpoints, config_lib
from colorjax.data import decode, sources


APP_PACKAGES = ("fastapi", "starlette", "uvicorn", "anyio")   # the `app` extra


def default_workdir(config) -> str:
  return os.path.join("runs", config.get("name", "default"))


def run(mode: str, config, flags) -> int:
  """Run `mode`; returns the process exit code."""
  workdir = flags.workdir or default_workdir(config)
  try:
    if mode == "train":
      from colorjax import train
      train.train_and_evaluate(config, workdir)
      return 0
    if mode == "eval":
      from colorjax import evaluate
      evaluate.evaluate_run(workdir, eval_dirs=flags.eval_dirs or None, step=flags.step,
                            print_summary=True)
      return 0
    if mode == "study":
      from colorjax import study
      study.run_study(config, workdir)
      return 0
    if mode == "colorize":
      from colorjax import inference
      return inference.colorize_cli(workdir, flags.input, flags.output, saturation=flags.saturation,
                                    fmt=flags.format, step=flags.step)
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
          decode.BadImage) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  except FloatingPointError as e:   # NonFiniteLossError, or jax_debug_nans (config.debug_nans)
    print(f"error: {str(e).strip().splitlines()[0]}", file=sys.stderr)
    return 1
  except KeyboardInterrupt:         # a second SIGINT/SIGTERM while stopping
    print("interrupted: stopped without writing a checkpoint; the previous one is kept",
          file=sys.stderr)
    return 130
