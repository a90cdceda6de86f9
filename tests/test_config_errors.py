"""Bad command lines and configs: one line naming the option and what is allowed, exit code 2.

Every case is a real `launch.py` process; all are started at once (none gets as far as
compiling anything) and must fail without a traceback.
"""
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from colorjax import config_lib
from conftest import ROOT, make_tiny_config

TINY = ["--config=configs/demo.py", "--config.image_size=32", "--config.batch_size=4",
        "--config.num_epochs=1", "--config.pretrain_epochs=0", "--config.model.encoder=resnet10",
        "--config.model.encoder_width=8", "--config.model.decoder_widths=(16,16,8,8,8)",
        "--config.disc.width=8", "--config.data.domains=('toon',)",
        "--config.data.train_size=8", "--config.data.val_size=2", "--config.data.test_size=2"]


def cases(folder):
  """(extra flags, words the error line must contain)."""
  return [
      (["--config.foo=1"], ["--config.foo", "no such config option"]),
      (["--config.batch_sise=8"], ["--config.batch_sise", "batch_size"]),
      (["--config.batch_size=abc"], ["--config.batch_size=abc", "int"]),
      (["--config.image_size=64.5"], ["--config.image_size"]),
      (["--config.batch_size=0"], ["config.batch_size=0", "positive integer"]),
      (["--config.image_size=48"], ["config.image_size=48", "multiple of 32"]),
      (["--mode=bogus"], ["--mode=bogus", "train|eval|study|colorize"]),
      (["--config.data.domains=('bogus',)"], ["unknown domain 'bogus'", "cartoon, movie"]),
      (["--config.data.domains=('toon','toon')"], ["config.data.domains", "twice"]),
      (["--config.pretrain_epochs=3"], ["config.pretrain_epochs=3", "config.num_epochs=1"]),
      (["--config.data.domains=('cartoon',)"], ["config.data.cartoon_dir", "is empty"]),
      (["--config.data.on_bad_image=maybe"], ["config.data.on_bad_image", "'skip' or 'error'"]),
      (["--config.optim.lr_g=-1"], ["config.optim.lr_g=-1", "> 0"]),
      (["--config.optim=3"], ["--config.optim=3"]),
      (["--config.batch_size=16"], ["config.batch_size=16", "8 training images"]),
      # a fraction on the command line parses (and the run gets as far as the next check)
      (["--config.data.test_size=0.25", "--config.batch_size=16"],
       ["config.batch_size=16", "8 training images"]),
      (["--config.data.train_size=8.5"], ["config.data.train_size=8.5", "whole count"]),
      (["--config=configs/missing.py"], ["configs/missing.py", "cannot load"]),
      ([f"--config.data.cartoon_dir={folder}", "--config.data.domains=('cartoon',)",
        "--config.data.test_size=5"], ["config.data.test_size=5", "only 3 usable images"]),
      (["--config.data.test_size=1", "--config.data.domains=('cartoon',)",
        f"--config.data.cartoon_dir={folder}/nope"],
       ["config.data.cartoon_dir=", "nope: no such directory"]),
      ([f"--config.data.cartoon_dir={folder}", f"--config.data.movie_dir={folder}/..",
        "--config.data.domains=('cartoon','movie')", "--config.data.test_size=1"],
       ["config.data.cartoon_dir=", "config.data.movie_dir=", "one folder holds the other"]),
      ([f"--workdir={folder}/0.png"], ["--workdir=", "0.png is a file, not a directory"]),
      ([f"--workdir={folder}/0.png/run"], ["0.png is a file, not a directory"]),
  ]


def test_bad_options_are_one_line_with_exit_code_2(tmp_path):
  folder = tmp_path / "three"
  folder.mkdir()
  for i in range(3):
    Image.fromarray(np.full((40, 40, 3), (i * 80, 30, 200), np.uint8)).save(folder / f"{i}.png")
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  procs = []
  for i, (extra, words) in enumerate(cases(folder)):
    args = [sys.executable, "launch.py", f"--workdir={tmp_path / str(i)}", *TINY, *extra]
    procs.append((extra, words, subprocess.Popen(args, cwd=ROOT, env=env, text=True,
                                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)))
  failures = []
  for extra, words, proc in procs:
    _, err = proc.communicate(timeout=300)
    lines = [l for l in err.splitlines() if l.startswith("error:")]
    ok = (proc.returncode == 2 and "Traceback" not in err and len(lines) == 1
          and all(w in lines[0] for w in words))
    if not ok:
      failures.append(f"{extra}: rc={proc.returncode} {lines or err[-1500:]}")
  assert not failures, "\n".join(failures)
  assert not any((tmp_path / str(i) / "checkpoints").exists() for i in range(len(procs)))


@pytest.mark.parametrize("key, value, words", [
    ("data.train_size", -3, "config.data.train_size=-3"),
    ("data.test_size", 2.5, "config.data.test_size=2.5"),
    ("data.workers", -1, "config.data.workers=-1"),
    ("data.crop_scale", 0.0, "config.data.crop_scale=0.0"),
    ("data.crop_scale", 1.5, "config.data.crop_scale=1.5"),
    ("checkpoint_every_steps", -5, "config.checkpoint_every_steps=-5"),
    ("model.encoder", "resnet99", "config.model.encoder='resnet99'"),
    ("model.decoder_widths", (8, 8), "config.model.decoder_widths=(8, 8)"),
    ("dtype", "float16", "config.dtype='float16'"),
    ("loss.l1_weight", -1.0, "config.loss.l1_weight=-1.0"),
])
def test_validate_names_the_option(key, value, words):
  config = config_lib.finalize(make_tiny_config(**{key: value}))
  with pytest.raises(config_lib.ConfigError) as e:
    config_lib.validate(config)
  assert words in str(e.value) and "\n" not in str(e.value)
