"""Shared fixtures: a tiny model/data config so behaviour tests run in seconds on 2 CPU cores."""
import os
import sys
import tempfile

import pytest

# One persistent XLA compilation cache per test session, inherited by the launch.py
# subprocesses: the tiny config's programs are compiled once, not once per process.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", tempfile.mkdtemp(prefix="colorjax-xla-"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:      # `from configs import default` inside config files
  sys.path.insert(0, ROOT)


def make_tiny_config(**overrides):
  """configs/demo.py shrunk to a 32 px, ~100k-parameter model on a few built-in images."""
  from configs import demo
  config = demo.get_config()
  config.image_size = 32
  config.batch_size = 4
  config.num_epochs = 1
  config.pretrain_epochs = 0
  config.log_every_steps = 1
  config.model.encoder = "resnet10"
  config.model.encoder_width = 8
  config.model.decoder_widths = (16, 16, 8, 8, 8)
  config.disc.width = 8
  config.data.domains = ("toon",)
  config.data.train_size = 16
  config.data.val_size = 4
  config.data.test_size = 4
  config.data.eval_batch_size = 4
  config.data.workers = 0
  for key, value in overrides.items():
    node = config
    *path, last = key.split(".")
    for p in path:
      node = node[p]
    node[last] = value
  return config


def save_random_run(workdir: str, step: int = 1, seed: int = 0, **overrides) -> str:
  """A run directory holding one checkpoint of the tiny config with random (He-normal) weights:
  no training, for tests of inference, video and the app. Returns `workdir`."""
  from colorjax import checkpoints, config_lib, state
  config = config_lib.finalize(make_tiny_config(seed=seed, **overrides))
  mngr = checkpoints.manager(workdir)
  checkpoints.save(mngr, step, state.random_state(config, seed=seed), {},
                   config.to_json_best_effort(), {checkpoints.VAL_METRIC: 1.0})
  mngr.close()
  return workdir


@pytest.fixture
def tiny_config():
  return make_tiny_config()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
  """A saved random tiny run (the demo-based tiny config: a hint model); a module may
  override it (test_hints: an automatic one)."""
  return save_random_run(str(tmp_path_factory.mktemp("run")))


@pytest.fixture(scope="module")
def colorizer(run_dir):
  """The run's Colorizer, loaded once per module."""
  from colorjax import inference
  return inference.load(run_dir)
