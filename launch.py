"""colorjax command line: parses flags and hands over to the function for the mode.

  python launch.py --config=configs/mixed.py [--config.KEY=VALUE ...] [--workdir=DIR]
                   [--mode=train|eval|study|colorize]
"""
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file(
    "config", "configs/default.py", "Path to an ml_collections config file.", lock_config=True)
flags.DEFINE_string("workdir", None, "Run directory (default: runs/<config name>).")
flags.DEFINE_enum("mode", "train", ["train", "eval", "study", "colorize"], "What to do.")
flags.DEFINE_list("eval_dirs", [], "eval: folders to evaluate on instead of the test splits.")
flags.DEFINE_multi_string("input", [], "colorize: image files, folders or glob patterns.")
flags.DEFINE_string("output", None, "colorize: output directory.")
flags.DEFINE_float("saturation", 1.0, "colorize: chroma scale (1 = as predicted, 0 = grey).")
flags.DEFINE_enum("format", None, ["png", "jpg"], "colorize: output format (default: the input's).")
flags.DEFINE_integer("step", None, "eval/colorize: checkpoint step (default: best by val loss).")
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not FLAGS["verbosity"].present:   # orbax/absl INFO logs drown the progress bar
    logging.set_verbosity(logging.WARNING)
  from colorjax import cli
  sys.exit(cli.run(FLAGS.mode, _CONFIG.value, FLAGS))


if __name__ == "__main__":
  app.run(main)
