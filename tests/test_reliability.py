"""Nothing is lost on kill, preemption, numerical faults, disk errors or damaged checkpoints.

Real processes (`launch.py --mode=train`), real signals, real files. One uninterrupted
reference run is shared; every interrupted run must end with exactly its parameters (CPU).
"""
import glob
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from colorjax import checkpoints, config_lib, train
from colorjax.logs import read_metrics
from conftest import ROOT, make_tiny_config

# 32 training images, batch 4: 8 steps per epoch, 2 epochs, a checkpoint every 2 steps.
TINY = ["--config=configs/demo.py", "--config.image_size=32", "--config.batch_size=4",
        "--config.num_epochs=2", "--config.pretrain_epochs=0", "--config.model.encoder=resnet10",
        "--config.model.encoder_width=8", "--config.model.decoder_widths=(16,16,8,8,8)",
        "--config.disc.width=8", "--config.data.domains=('toon',)",
        "--config.data.train_size=32", "--config.data.val_size=4", "--config.data.test_size=4",
        "--config.data.eval_batch_size=4", "--config.log_every_steps=1",
        "--config.checkpoint_every_steps=2"]
FINAL = 16


def tiny_config(**overrides):
  base = {"data.train_size": 32, "num_epochs": 2, "checkpoint_every_steps": 2}
  return config_lib.finalize(make_tiny_config(**{**base, **overrides}))


def launch(workdir, *extra, **kwargs):
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  return subprocess.Popen([sys.executable, "launch.py", f"--workdir={workdir}", *TINY, *extra],
                          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, **kwargs)


def finish(proc, timeout=240):
  out, err = proc.communicate(timeout=timeout)
  return proc.returncode, out, err


def steps(workdir):
  d = os.path.join(workdir, "checkpoints")
  return sorted(int(n) for n in os.listdir(d) if n.isdigit()) if os.path.isdir(d) else []


def tmp_dirs(workdir):
  return glob.glob(os.path.join(workdir, "checkpoints", "*orbax-checkpoint-tmp*"))


def wait_for(predicate, proc, timeout=180, interval=0.002):
  t0 = time.time()
  while time.time() - t0 < timeout:
    if predicate():
      return True
    if proc.poll() is not None:
      return False
    time.sleep(interval)
  return False


def final_state(workdir, step=FINAL):
  mngr = checkpoints.manager(workdir, read_only=True)
  state, _, _ = checkpoints.restore(mngr, step, train.Trainer(tiny_config()).abstract_state())
  return jax.tree.map(np.asarray, state)


def assert_same_params(workdir, reference):
  got = jax.tree_util.tree_flatten_with_path(final_state(workdir))[0]
  want = jax.tree.leaves(reference)
  assert len(got) == len(want)
  for (path, a), b in zip(got, want):
    np.testing.assert_array_equal(a, b, err_msg=jax.tree_util.keystr(path))


def one_error_line(err):
  lines = [l for l in err.replace("\r", "\n").splitlines() if l.startswith("error:")]
  assert "Traceback" not in err, err[-3000:]
  assert len(lines) == 1, err[-3000:]
  return lines[0]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """An uninterrupted run: (workdir, its final state)."""
  workdir = str(tmp_path_factory.mktemp("ref") / "run")
  rc, _, err = finish(launch(workdir))
  assert rc == 0, err[-3000:]
  return workdir, final_state(workdir)


def copy_run(reference, tmp_path, name):
  dst = str(tmp_path / name)
  shutil.copytree(reference[0], dst)
  return dst


def test_sigkill_anywhere_then_rerun_ends_bit_exact(reference, tmp_path):
  workdir = str(tmp_path / "killed")
  # 1. Killed right after the first checkpoint is committed.
  proc = launch(workdir)
  assert wait_for(lambda: steps(workdir), proc), finish(proc)[2][-3000:]
  proc.kill()
  proc.wait()
  # 2. Killed in the middle of writing a checkpoint (its temporary directory exists).
  first = steps(workdir)
  proc = launch(workdir)
  assert wait_for(lambda: tmp_dirs(workdir), proc), finish(proc)[2][-3000:]
  proc.kill()
  proc.wait()
  partial = tmp_dirs(workdir)
  # 3. The same command again: cleans the partial write, resumes, finishes.
  rc, _, err = finish(launch(workdir))
  assert rc == 0, err[-3000:]
  assert "resuming" in err
  assert not tmp_dirs(workdir), "a partial checkpoint was left behind"
  assert FINAL in steps(workdir) and first
  assert_same_params(workdir, reference[1])
  # Each step is logged once, even though some were run twice.
  logged = [r["step"] for r in read_metrics(workdir) if r["type"] == "step"]
  assert logged == list(range(1, FINAL + 1))
  print(f"killed after checkpoint {first}; killed during a write ({len(partial)} partial dirs)")


@pytest.mark.parametrize("sig, workers", [(signal.SIGTERM, 0), (signal.SIGINT, 2)])
def test_preemption_signal_checkpoints_and_resumes(reference, tmp_path, sig, workers):
  workdir = str(tmp_path / "preempted")
  extra = [f"--config.data.workers={workers}"]
  # The batches do not depend on the worker count: every run ends where the reference
  # (workers=0, uninterrupted) does.
  proc = launch(workdir, *extra, start_new_session=True)
  started = lambda: any(r.get("type") == "step" for r in read_metrics(workdir))
  assert wait_for(started, proc), finish(proc)[2][-3000:]
  # Ctrl-C reaches the whole process group (data workers included); SIGTERM just the main.
  os.killpg(proc.pid, sig) if sig == signal.SIGINT else proc.send_signal(sig)
  rc, out, err = finish(proc)
  assert rc == 0, err[-3000:]
  assert f"{signal.Signals(sig).name}: checkpoint written at step" in out, out + err[-2000:]
  step = int(out.split("at step ")[1].split()[0])
  assert step in steps(workdir) and 0 < step
  rc, out, err = finish(launch(workdir, *extra))
  assert rc == 0, err[-3000:]
  if step < FINAL:
    assert f"from step {step}" in err
  assert_same_params(workdir, reference[1])
  if workers:       # grain's saved position is that of a pipeline with this many workers
    rc, _, err = finish(launch(workdir, "--config.data.workers=0", "--config.num_epochs=3"))
    assert rc == 2 and one_error_line(err).startswith(
        "error: config.data.workers=0: ") and "resume with --config.data.workers=2" in err, err


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(reference, tmp_path):
  workdir = copy_run(reference, tmp_path, "nan")
  before = {s: os.path.getmtime(os.path.join(workdir, "checkpoints", str(s))) for s in steps(workdir)}
  rc, _, err = finish(launch(workdir, "--config.num_epochs=3", "--config.optim.lr_g=1e30"))
  assert rc == 1
  line = one_error_line(err)
  assert "non-finite" in line and "step" in line, line
  after = {s: os.path.getmtime(os.path.join(workdir, "checkpoints", str(s))) for s in steps(workdir)}
  assert after == before                       # nothing non-finite was saved
  good = final_state(workdir)
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(good))


def test_debug_nans_turns_on_jax_nan_checking(tmp_path):
  rc, _, err = finish(launch(str(tmp_path / "dbg"), "--config.debug_nans=True",
                             "--config.optim.lr_g=1e30", "--config.optim.lr_d=1e30"))
  assert rc == 1
  line = one_error_line(err)
  assert "nan" in line.lower(), line


def _limit_file_size():
  # Any file write past 256 KiB fails with EFBIG ("disk full" for a single file), also as root.
  signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
  resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))


def test_failed_checkpoint_write_keeps_earlier_ones_and_says_what_failed(reference, tmp_path):
  workdir = copy_run(reference, tmp_path, "disk")
  kept = steps(workdir)
  rc, _, err = finish(launch(workdir, "--config.num_epochs=3", preexec_fn=_limit_file_size))
  assert rc != 0
  line = one_error_line(err)
  assert "writing the checkpoint of step 18" in line and "intact" in line, line
  assert steps(workdir) == kept
  for s in kept:
    final_state(workdir, s)                    # still restorable
  # With space again, the same command resumes from the last good checkpoint and finishes.
  rc, _, err = finish(launch(workdir, "--config.num_epochs=3"))
  assert rc == 0, err[-3000:]
  assert 24 in steps(workdir)


def test_resuming_with_a_different_model_names_the_parameter(reference, tmp_path):
  workdir = copy_run(reference, tmp_path, "mismatch")
  rc, _, err = finish(launch(workdir, "--config.model.encoder_width=16"))
  assert rc == 2
  line = one_error_line(err)
  assert "different model" in line and "g/params/" in line, line
  assert re.search(r"shape \([\d, ]+\) in the checkpoint but \([\d, ]+\) in the config", line), line


def test_corrupt_newest_checkpoint_falls_back_to_the_previous(reference, tmp_path):
  workdir = copy_run(reference, tmp_path, "corrupt")
  # Inference/evaluation: a damaged best checkpoint is reported and the newest good one used.
  best = checkpoints.best_step(checkpoints.manager(workdir, read_only=True))
  for path in glob.glob(os.path.join(workdir, "checkpoints", str(best), "state", "**", "d", "*"),
                        recursive=True):
    with open(path, "r+b") as f:
      f.truncate(os.path.getsize(path) // 2)
  fallback = max(s for s in steps(workdir) if s != best)
  config, variables, step = checkpoints.restore_generator(workdir, step=None)
  assert step == fallback and config.model.encoder == "resnet10"
  with pytest.raises(checkpoints.CheckpointError, match="unreadable"):
    checkpoints.restore_generator(workdir, step=best)
  # Training: a partial newest checkpoint is reported, moved aside, and the run resumes from
  # the previous one and ends exactly where it should.
  if best != FINAL:
    shutil.rmtree(os.path.join(workdir, "checkpoints", str(best)))
    os.remove(os.path.join(workdir, "checkpoints", str(FINAL), "state", "_METADATA"))
  previous = max(s for s in steps(workdir) if s != FINAL)
  rc, _, err = finish(launch(workdir))
  assert rc == 0, err[-3000:]
  assert f"{FINAL}: unreadable" in err and f"from step {previous}" in err, err[-3000:]
  assert os.listdir(os.path.join(workdir, "checkpoints_corrupt"))
  assert_same_params(workdir, reference[1])


def test_a_preempted_study_exits_0(tmp_path):
  """SIGTERM stops a study like a training run: a checkpoint and exit code 0 (a SLURM job
  with --signal=TERM is not marked failed)."""
  workdir = str(tmp_path / "study")
  args = [sys.executable, "launch.py", f"--workdir={workdir}", "--mode=study",
          *[a for a in TINY if not a.startswith("--config.data.domains")],
          "--config.data.domains=('toon','photo')", "--config.num_epochs=1"]
  proc = subprocess.Popen(args, cwd=ROOT, env={**os.environ, "JAX_PLATFORMS": "cpu"},
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  cartoon = os.path.join(workdir, "cartoon")
  started = lambda: any(r.get("type") == "step" for r in read_metrics(cartoon))
  assert wait_for(started, proc), finish(proc)[2][-3000:]
  proc.send_signal(signal.SIGTERM)
  rc, out, err = finish(proc)
  assert rc == 0 and "[study] stopped during the cartoon model" in err, err[-3000:]
  assert steps(cartoon)        # its checkpoint (a half-finished study resuming: test_study)
