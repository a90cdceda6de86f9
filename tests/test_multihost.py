"""`launch.py` as several processes on localhost: the whole run, through the real command.

2 processes × 1 CPU device (explicit --coordinator/--num_processes/--process_id, gloo
collectives) against 1 process × 2 devices on the same tiny config: same checkpoint steps,
same per-step losses and parameters up to float32 summation order. One process is killed
mid-run: the other names it and exits within the heartbeat bound; restarting both resumes
from the last checkpoint (data positions included) and ends where the reference run ends.
A checkpoint written by 2 processes is then read by this single (pytest) process.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from colorjax import checkpoints, config_lib, evaluate, train
from colorjax.logs import read_metrics
from conftest import ROOT, make_tiny_config

# 16 training images, global batch 4: 4 steps per epoch, 2 epochs, a checkpoint every 2 steps.
TINY = ["--config=configs/demo.py", "--config.image_size=32", "--config.batch_size=4",
        "--config.num_epochs=2", "--config.pretrain_epochs=0", "--config.model.encoder=resnet10",
        "--config.model.encoder_width=8", "--config.model.decoder_widths=(16,16,8,8,8)",
        "--config.disc.width=8", "--config.data.domains=('toon',)",
        "--config.data.train_size=16", "--config.data.val_size=4", "--config.data.test_size=4",
        "--config.data.eval_batch_size=4", "--config.log_every_steps=1",
        "--config.checkpoint_every_steps=2",
        # An automatic model: the hint inputs' near-zero gradients let Adam's first steps flip
        # the sign of many kernel elements between summation orders (23% of G's elements
        # > 1e-4 apart seen), which would hide a real mismatch under a loose tolerance.
        "--config.model.hints=False"]
FINAL, KILL_AFTER = 8, 4
HEARTBEAT_S = 20       # --heartbeat_timeout: the bound a survivor must meet (+ 1 s beat)
SLACK_S = 12            # this busy 2-core machine: process start-up noise, not the bound


def tiny_config():
  return config_lib.finalize(make_tiny_config(**{"num_epochs": 2, "checkpoint_every_steps": 2,
                                                 "model.hints": False}))


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def launch(workdir, devices: int, *extra):
  env = {**os.environ, "JAX_PLATFORMS": "cpu",
         "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
  return subprocess.Popen([sys.executable, "launch.py", f"--workdir={workdir}", *TINY, *extra],
                          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)


def launch_pair(workdir, *extra, extra_for=None):
  """Two processes of one run; `extra_for` {process id: [flags]} adds flags to one of them."""
  port = free_port()
  return [launch(workdir, 1, f"--coordinator=localhost:{port}", "--num_processes=2",
                 f"--process_id={i}", f"--heartbeat_timeout={HEARTBEAT_S}", *extra,
                 *(extra_for or {}).get(i, [])) for i in range(2)]


def finish(proc, timeout=300):
  out, err = proc.communicate(timeout=timeout)
  return proc.returncode, out, err


def steps(workdir):
  d = os.path.join(workdir, "checkpoints")
  return sorted(int(n) for n in os.listdir(d) if n.isdigit()) if os.path.isdir(d) else []


def final_state(workdir):
  mngr = checkpoints.manager(workdir, read_only=True)
  state, data, _ = checkpoints.restore(mngr, FINAL, train.Trainer(tiny_config()).abstract_state())
  return jax.tree.map(np.asarray, state), data


def step_losses(workdir):
  return {r["step"]: r for r in read_metrics(workdir) if r.get("type") == "step"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """The reference (1 process × 2 devices) and a 2-process run killed after step KILL_AFTER's
  checkpoint and restarted; run side by side."""
  root = tmp_path_factory.mktemp("multihost")
  one, two = str(root / "one"), str(root / "two")
  reference = launch(one, 2)
  pair = launch_pair(two)
  while KILL_AFTER not in steps(two) and all(p.poll() is None for p in pair):
    time.sleep(0.05)
  assert all(p.poll() is None for p in pair), [finish(p)[2][-2000:] for p in pair]
  pair[1].send_signal(signal.SIGKILL)
  t_kill = time.time()
  survivor = finish(pair[0])
  survivor_s = time.time() - t_kill
  finish(pair[1])
  at_kill = steps(two)
  restarted = [finish(p) for p in launch_pair(two)]
  return {"one": one, "two": two, "reference": finish(reference), "survivor": survivor,
          "survivor_s": survivor_s, "at_kill": at_kill, "restarted": restarted}


def test_lost_process_is_named_and_the_other_stops_within_the_heartbeat_bound(runs):
  code, _, err = runs["survivor"]
  print(f"process 0 exited {runs['survivor_s']:.1f} s after process 1 was killed (code {code})")
  assert code != 0
  assert "error: process 1 of 2 is lost: no heartbeat" in err, err[-3000:]
  assert "Run the same command on every process again" in err
  # The bound: heartbeat timeout + 1 s beat interval; the slack covers this machine's noise.
  assert runs["survivor_s"] < HEARTBEAT_S + SLACK_S, runs["survivor_s"]
  assert runs["at_kill"] and max(runs["at_kill"]) < FINAL, runs["at_kill"]


def test_restarted_processes_finish_like_one_process_with_two_devices(runs):
  one, two = runs["one"], runs["two"]
  code, _, err = runs["reference"]
  assert code == 0, err[-3000:]
  for i, (code, out, err) in enumerate(runs["restarted"]):
    assert code == 0, (i, err[-3000:])
  assert f"from step {max(runs['at_kill'])}" in runs["restarted"][0][2]    # resumed, not restarted
  assert steps(two) == steps(one) and FINAL in steps(one), (steps(two), steps(one))
  # Process 0 alone logs: every step once (the killed run's extra steps were dropped on resume).
  logged = [r["step"] for r in read_metrics(two) if r.get("type") == "step"]
  assert logged == list(range(1, FINAL + 1)), logged
  assert "step/s" in runs["restarted"][0][2] and "step/s" not in runs["restarted"][1][2]
  assert not os.path.exists(os.path.join(two, "tensorboard", "1"))
  # Same batches in the same order after the resume: per-step losses agree to float32
  # summation order (1.4e-3 seen after 7 steps; a batch of other images moves them by ~10%).
  want, got = step_losses(one), step_losses(two)
  for step in range(1, FINAL + 1):
    for k in ("d_loss", "g_l1", "g_adv"):
      np.testing.assert_allclose(got[step][k], want[step][k], rtol=1e-2, err_msg=f"{k} {step}")
  epochs = lambda w: [r["val_loss"] for r in read_metrics(w) if r.get("type") == "epoch"]
  np.testing.assert_allclose(epochs(two), epochs(one), rtol=1e-4)
  # Parameters: Adam moves each by about lr (2e-4) per step; where a gradient is ~0 the
  # summation order can flip its sign, so a few elements differ by up to one lr per step
  # (7.7 lr seen in 16 of 107,298 after 8 steps); almost all agree to 1e-4.
  (s2, data2), (s1, data1) = final_state(two), final_state(one)
  assert data2 == {train.PROCESS_STATES: [{"next_index": 16}, {"next_index": 16}]}, data2
  assert data1 == {"next_index": 32}, data1
  for net in ("g", "d"):
    got = np.concatenate([x.ravel() for x in jax.tree.leaves(getattr(s2, net).params)])
    want = np.concatenate([x.ravel() for x in jax.tree.leaves(getattr(s1, net).params)])
    np.testing.assert_allclose(got, want, atol=1.1 * FINAL * 2e-4, err_msg=net)
    assert np.mean(np.abs(got - want) > 1e-4) < 0.01, net
    stats2, stats1 = (jax.tree.leaves(getattr(s, net).batch_stats) for s in (s2, s1))
    for a, b in zip(stats2, stats1):
      np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4, err_msg=net)


def test_one_process_evaluates_a_two_process_checkpoint(runs):
  """`--mode=eval`'s code, here in this single process: every test image once."""
  report = evaluate.evaluate_run(runs["two"], step=FINAL)
  reference = evaluate.evaluate_run(runs["one"], step=FINAL)
  got, want = report["domains"]["toon"], reference["domains"]["toon"]
  assert got["n"] == want["n"] == 4
  np.testing.assert_allclose(got["delta_e"], want["delta_e"], rtol=1e-2)


def test_flags_need_all_three_or_none(tmp_path):
  procs = [launch(tmp_path / "a", 1, "--coordinator=localhost:1234"),
           launch(tmp_path / "b", 1, "--coordinator=localhost:1234", "--num_processes=2",
                  "--process_id=2"),
           launch(tmp_path / "c", 1, "--mode=eval", "--coordinator=localhost:1234",
                  "--num_processes=2", "--process_id=0")]
  results = [finish(p) for p in procs]
  for code, _, err in results:
    assert code == 2 and len(err.strip().splitlines()) == 1, err
  assert results[0][2].startswith("error: --num_processes, --process_id: missing")
  assert "need 0 <= process_id < num_processes" in results[1][2]
  assert "--mode=eval runs in one process" in results[2][2]


def test_mismatched_processes_fail_before_training(tmp_path):
  """A different config on one process, or a batch the 2 devices cannot split: one line each,
  exit code 2 on both processes, nothing trained."""
  pairs = {"config": launch_pair(tmp_path / "config",
                                 extra_for={1: ["--config.optim.lr_g=0.001"]}),
           "batch": launch_pair(tmp_path / "batch", "--config.batch_size=3")}
  for name, pair in pairs.items():
    for i, p in enumerate(pair):
      code, _, err = finish(p, timeout=180)
      lines = [l for l in err.splitlines() if l.startswith("error:")]
      assert code == 2 and len(lines) == 1, (name, i, err[-2000:])
      if name == "config":
        assert "process 1 runs a different config than process 0" in lines[0], lines
      else:
        assert "config.batch_size=3: must be divisible by the 2 devices" in lines[0], lines
    assert steps(tmp_path / name) == []


def test_cluster_detection_uses_jax_detectors_and_one_task_stays_alone(monkeypatch):
  """SLURM as JAX sees it (srun's variables); nothing is started for one task or for eval."""
  from colorjax import distributed
  for key, value in {"SLURM_JOB_ID": "4242", "SLURM_STEP_NODELIST": "node[1-2]",
                     "SLURM_NTASKS": "1", "SLURM_PROCID": "0", "SLURM_LOCALID": "0"}.items():
    monkeypatch.setenv(key, value)
  assert distributed.detect_cluster() == ("SlurmCluster", 1, 0)
  assert distributed.join(mode="train") == 1
  monkeypatch.setenv("SLURM_NTASKS", "2")
  monkeypatch.setenv("SLURM_PROCID", "1")
  assert distributed.detect_cluster() == ("SlurmCluster", 2, 1)
  assert distributed.join(mode="eval") == -1      # eval/colorize: process 0 only
  assert not jax.distributed.is_initialized()
