"""colorjax command line: parses flags and hands over to the function for the mode.

  python launch.py --config=configs/mixed.py [--config.KEY=VALUE ...] [--workdir=DIR]
                   [--mode=train|eval|study|colorize|serve]
                   [--coordinator=HOST:PORT --num_processes=N --process_id=I]   # several hosts
  python launch.py --mode=serve --workdir=RUN_OR_STUDY_DIR [--port=7860] [--host=127.0.0.1]
"""
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from colorjax import xla_flags

xla_flags.apply()     # before JAX starts: XLA reads XLA_FLAGS when it creates a backend

# The default beside this file, so that launch.py runs from any directory (colorize, eval and
# serve read the run's own config; the default only names runs/<name>).
_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "default.py"),
    "Path to an ml_collections config file (default: configs/default.py).", lock_config=True)
flags.DEFINE_string("workdir", None, "Run directory (default: runs/<config name>).")
flags.DEFINE_enum("mode", "train", ["train", "eval", "study", "colorize", "serve"], "What to do.")
flags.DEFINE_list("eval_dirs", [], "eval: folders to evaluate on instead of the test splits.")
flags.DEFINE_multi_string("input", [], "colorize: image files, folders or glob patterns.")
flags.DEFINE_string("output", None, "colorize: output directory.")
flags.DEFINE_float("saturation", 1.0, "colorize: chroma scale, a display control (1 = as "
                   "predicted, 0 = grey); vivid colours come from training (configs/vivid.py).")
flags.DEFINE_enum("format", None, ["png", "jpg"], "colorize: output format (default: the input's).")
flags.DEFINE_string("hints", None, "colorize: a JSON (points) or RGBA PNG (scribble) hint file, "
                    "or a folder with one per input named by its stem; eval: hint counts like "
                    "0,1,2,5,10.")
flags.DEFINE_float("temporal", None, "colorize (video, frame folders): stability 0..1; 0 = "
                   "each frame alone (default: colorjax.temporal.DEFAULT_STRENGTH).")
flags.DEFINE_integer("step", None, "eval/colorize/serve: checkpoint step (default: best by val loss).")
flags.DEFINE_integer("port", 7860, "serve: TCP port (0: any free port).")
flags.DEFINE_string("host", "127.0.0.1", "serve: address to bind (default: loopback only).")
flags.DEFINE_string("coordinator", None, "train/study on several processes: HOST:PORT of "
                    "process 0 (with --num_processes, --process_id; none inside SLURM, Open MPI, "
                    "Kubernetes or a Cloud TPU pod: JAX detects them).")
flags.DEFINE_integer("num_processes", None, "train/study: how many processes run together.")
flags.DEFINE_integer("process_id", None, "train/study: this process's index, 0..num_processes-1.")
flags.DEFINE_integer("heartbeat_timeout", 60, "train/study on several processes: seconds without "
                     "a heartbeat after which a process is declared lost and the others stop.")
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not FLAGS["verbosity"].present:   # orbax/absl INFO logs drown the progress bar
    logging.set_verbosity(logging.WARNING)
  try:
    config = _CONFIG.value
    config.get("name")         # a missing config file raises on first access
  except Exception as e:    # missing file, or an exception while running it
    lines = [l.strip() for l in str(e).splitlines() if l.strip()]
    sys.stderr.write(f"error: --config={FLAGS['config'].serialize().split('=', 1)[-1]}: cannot "
                     f"load ({type(e).__name__}: {' '.join(lines)[:400]})\n")
    sys.exit(2)
  from colorjax import cli
  code = cli.run(FLAGS.mode, config, FLAGS)
  if code:
    # After a failure, skip interpreter teardown: orbax's background I/O threads can print
    # unrelated tracebacks ("Event loop is closed") over the one-line error. Every write the
    # run made is already complete (checkpoints are saved synchronously).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
  sys.exit(0)


def parse_flags(argv):
  """absl's parser, but a bad flag or --config.KEY is one line on stderr and exit code 2."""
  try:
    return FLAGS(argv)
  except flags.Error as e:     # bad value; or a config file that raised (then a traceback text)
    lines = [l.strip() for l in str(e).splitlines() if l.strip()]
    message = lines[0] if len(lines) < 2 else f"{lines[0]} {lines[-1]}"
  except (AttributeError, KeyError) as e:    # ml_collections (lock_config): an unknown key
    while e.args and isinstance(e.args[0], BaseException):
      e = e.args[0]
    detail = " ".join(str(e.args[0] if e.args else e).split())
    name = detail.split("'")[1] if detail.count("'") >= 2 else detail
    culprit = [a.split("=")[0] for a in argv[1:]
               if a.startswith("--config.") and a.split("=")[0].endswith("." + name)]
    message = f"{culprit[0] if culprit else '--config'}: no such config option ({detail})"
  except Exception as e:    # the config file itself: missing, or raising while loading
    lines = [l.strip() for l in str(e).splitlines() if l.strip()]
    message = f"--config: cannot load the config ({type(e).__name__}: {' '.join(lines)[:400]})"
  sys.stderr.write(f"error: {message}\n")
  sys.exit(2)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
