"""The training loop end to end at tiny scale: learning, files written, resume, CLI overrides."""
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from colorjax import checkpoints, config_lib, train
from colorjax.data import pipeline
from colorjax.logs import read_metrics
from conftest import ROOT, make_tiny_config


def fixed_batch(config, n=4):
  splits = train.domain_records(config)
  it = iter(pipeline.train_dataset([splits["toon"].train], config.image_size, n, seed=0))
  return next(it)


@pytest.fixture(scope="module")
def trainer():
  """One compiled tiny Trainer shared by the step tests (compilation dominates their time)."""
  return train.Trainer(config_lib.finalize(make_tiny_config(**{"optim.lr_g": 2e-3})))


@pytest.mark.device
def test_tiny_gan_overfits_a_fixed_batch(trainer):
  state = trainer.init(0)
  batch = trainer.shard_batch(fixed_batch(trainer.config))
  l1 = []
  for _ in range(60):
    state, metrics = trainer.gan_step(state, batch)
    l1.append(float(metrics["g_l1"]))
    assert np.isfinite(float(metrics["d_loss"])) and np.isfinite(float(metrics["g_adv"]))
  assert int(state.step) == 60
  assert np.mean(l1[-5:]) < 0.5 * np.mean(l1[:5]), l1


@pytest.mark.device
def test_warmup_step_trains_only_the_generator(trainer):
  state = trainer.init(0)
  d_before = jax.tree.map(np.asarray, state.d)
  g_before = jax.tree.map(np.asarray, state.g.params)
  state, metrics = trainer.warmup_step(state, trainer.shard_batch(fixed_batch(trainer.config)))
  assert "d_loss" not in metrics and float(metrics["g_adv"]) == 0.0
  jax.tree.map(np.testing.assert_array_equal, jax.tree.map(np.asarray, state.d), d_before)
  changed = jax.tree.map(lambda a, b: not np.array_equal(np.asarray(a), b), state.g.params, g_before)
  assert all(jax.tree.leaves(changed))


@pytest.mark.device
def test_one_epoch_writes_checkpoint_logs_and_restores(tmp_path):
  config = make_tiny_config(num_epochs=2, pretrain_epochs=1)
  workdir = str(tmp_path / "run")
  summary = train.train_and_evaluate(config, workdir)
  steps_per_epoch = 16 // 4
  assert summary["epoch"] == 2 and summary["step"] == 2 * steps_per_epoch
  assert np.isfinite(summary["val_loss"])

  records = read_metrics(workdir)
  epochs = [r for r in records if r["type"] == "epoch"]
  assert [r["epoch"] for r in epochs] == [1, 2]
  assert epochs[0]["warmup"] and not epochs[1]["warmup"]
  steps = [r for r in records if r["type"] == "step"]
  assert len(steps) == 2 * steps_per_epoch
  assert {"d_loss", "g_adv", "g_l1", "img_per_s"} <= set(steps[-1])
  assert "d_loss" not in steps[0]                          # warm-up: no discriminator
  assert any(f.startswith("events.out.tfevents") for f in os.listdir(os.path.join(workdir, "tensorboard")))
  saved = json.load(open(os.path.join(workdir, "config.json")))
  assert saved["image_size"] == 32       # dtype "" resolved per backend (bfloat16 on a GPU)
  assert saved["dtype"] == ("float32" if jax.default_backend() == "cpu" else "bfloat16")

  mngr = checkpoints.manager(workdir, read_only=True)
  assert sorted(mngr.all_steps()) == [steps_per_epoch, 2 * steps_per_epoch]
  # The best checkpoint (lowest val loss) is what evaluation and inference load.
  best = min(epochs, key=lambda r: r["val_loss"])["step"]
  assert checkpoints.best_step(mngr) == best

  # Restoring gives exactly the trained parameters; a second call resumes and does nothing.
  trainer = train.Trainer(config_lib.finalize(config))
  restored, data_state, _ = checkpoints.restore(mngr, 2 * steps_per_epoch, trainer.abstract_state())
  assert int(restored.step) == 2 * steps_per_epoch and data_state
  config2, variables, step = checkpoints.restore_generator(workdir, step=2 * steps_per_epoch)
  jax.tree.map(np.testing.assert_array_equal, variables["params"], restored.g.params)
  assert config2.model.encoder == "resnet10"
  n_lines = len(read_metrics(workdir))
  train.train_and_evaluate(config, workdir)
  assert len(read_metrics(workdir)) == n_lines


def test_command_line_overrides_reach_the_run(tmp_path):
  workdir = tmp_path / "cli"
  args = [sys.executable, "launch.py", "--config=configs/demo.py", f"--workdir={workdir}",
          "--config.image_size=32", "--config.batch_size=4", "--config.num_epochs=1",
          "--config.pretrain_epochs=0", "--config.model.encoder=resnet10",
          "--config.model.encoder_width=8", "--config.model.decoder_widths=(16,16,8,8,8)",
          "--config.disc.width=8", "--config.data.domains=('photo',)",
          "--config.data.train_size=8", "--config.data.val_size=4", "--config.data.test_size=4",
          "--config.optim.lr_g=0.001"]
  proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  saved = json.load(open(workdir / "config.json"))
  assert saved["image_size"] == 32 and saved["optim"]["lr_g"] == 0.001
  assert saved["data"]["domains"] == ["photo"] and saved["model"]["encoder"] == "resnet10"
  assert (workdir / "checkpoints" / "2").is_dir()


def test_steps_per_epoch_fixes_the_epoch_length():
  config = make_tiny_config(num_epochs=3)
  assert train.schedule(config, 40) == (10, 30)             # one pass over 40 images, batch 4
  config.steps_per_epoch = 25                               # small data: validate less often
  assert train.schedule(config, 40) == (25, 75)
  config.max_steps_per_epoch = 7
  assert train.schedule(config, 40) == (7, 21)
  config.steps_per_epoch = -1
  with pytest.raises(config_lib.ConfigError, match="config.steps_per_epoch=-1"):
    config_lib.validate(config_lib.finalize(config))
