"""Scale: data parallelism on 8 simulated devices, 2-process jax.distributed, bfloat16 training.

The multi-device checks run in subprocesses (`python tests/test_scale.py MODE ...`) because the
number of CPU devices is fixed when jax starts (XLA_FLAGS=--xla_force_host_platform_device_count).
"""
import json
import os
import socket
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if HERE not in sys.path:
  sys.path.insert(0, HERE)
from conftest import make_tiny_config  # noqa: E402


def _records(config):
  from colorjax import train
  return [s.train for s in train.domain_records(config).values()]


def _summary(tree) -> list[float]:
  """Per-leaf (sum, sum of squares) of a replicated pytree, readable on any process."""
  out = []
  for x in jax.tree.leaves(tree):
    a = np.asarray(x.addressable_data(0), np.float64)
    out += [float(a.sum()), float((a * a).sum())]
  return out


def _run_worker(mode: str, *args, devices: int, timeout: int = 240) -> subprocess.Popen:
  env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
             JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
  return subprocess.Popen([sys.executable, os.path.abspath(__file__), mode, *map(str, args)],
                          env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)


def _result(proc: subprocess.Popen, timeout: int = 300) -> dict:
  out, err = proc.communicate(timeout=timeout)
  assert proc.returncode == 0, err[-3000:]
  return json.loads(out.strip().splitlines()[-1])


# ---- workers (run in subprocesses) -------------------------------------------------------------

def _data_parallel_worker() -> dict:
  """One gan_step on a 1-device mesh and on an 8-device mesh from the same state and batch."""
  from jax.sharding import Mesh
  from colorjax import config_lib, train
  from colorjax.data import pipeline
  config = config_lib.finalize(make_tiny_config(batch_size=16))
  batch = next(iter(pipeline.train_dataset(_records(config), config.image_size, 16, seed=0)))
  out = {"devices": jax.device_count()}
  for name, devices in (("one", jax.devices()[:1]), ("all", jax.devices())):
    trainer = train.Trainer(config, Mesh(np.array(devices), ("data",)))
    state, metrics = trainer.gan_step(trainer.init(0), trainer.shard_batch(batch))
    flat = lambda tree: np.concatenate([np.ravel(x) for x in jax.tree.leaves(tree)]).tolist()
    out[name] = {"metrics": {k: float(v) for k, v in metrics.items()},
                 "g": flat(state.g.params), "d": flat(state.d.params),
                 # Adam's first moment after one step is (1 - b1)·gradient.
                 "g_grad": flat(state.g.opt_state[0].mu), "d_grad": flat(state.d.opt_state[0].mu),
                 "g_stats": flat(state.g.batch_stats), "d_stats": flat(state.d.batch_stats),
                 "local_shards": len(state.g.params["head"]["kernel"].addressable_shards)}
  return out


def _multi_process_worker(process_id: int, num_processes: int, port: int, steps: int) -> dict:
  """`steps` gan_steps of the tiny model, each process reading its own shard of the data."""
  if num_processes > 1:
    jax.distributed.initialize(f"localhost:{port}", num_processes=num_processes,
                               process_id=process_id)
  from colorjax import config_lib, train
  from colorjax.data import pipeline
  config = config_lib.finalize(make_tiny_config(batch_size=8))
  config_lib.validate(config)
  trainer = train.Trainer(config)
  state = trainer.init(0)
  data = iter(pipeline.train_dataset(
      _records(config), config.image_size, config.batch_size // jax.process_count(), seed=0,
      shard_index=jax.process_index(), shard_count=jax.process_count()))
  losses = []
  for _ in range(steps):
    state, metrics = trainer.gan_step(state, trainer.shard_batch(next(data)))
    losses.append({k: float(v) for k, v in metrics.items()})
  return {"process": jax.process_index(), "processes": jax.process_count(),
          "devices": jax.device_count(), "local_devices": jax.local_device_count(),
          "losses": losses, "g": _summary(state.g.params), "d_stats": _summary(state.d.batch_stats)}


# ---- tests -------------------------------------------------------------------------------------

def test_eight_devices_match_one_device_step():
  out = _result(_run_worker("data_parallel", devices=8))
  assert out["devices"] == 8
  one, all8 = out["one"], out["all"]
  assert one["local_shards"] == 1 and all8["local_shards"] == 8
  for k, v in one["metrics"].items():
    np.testing.assert_allclose(all8["metrics"][k], v, rtol=1e-5, err_msg=k)
  # BatchNorm running statistics equal the 1-device ones: they are over the global batch of
  # 16, not per device (2 images each would give visibly different means and variances).
  for key in ("g_stats", "d_stats"):
    np.testing.assert_allclose(all8[key], one[key], rtol=1e-4, atol=1e-6, err_msg=key)
  for net in ("g", "d"):
    want, got = np.array(one[f"{net}_grad"]), np.array(all8[f"{net}_grad"])
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5 * np.abs(want).max(), err_msg=net)
    # Adam's first step moves each parameter by ≈ lr·sign(gradient): equal except where the
    # gradient is ~0 and float32 summation order decides its sign (a few elements at most).
    want, got = np.array(one[net]), np.array(all8[net])
    close = np.isclose(got, want, rtol=1e-5, atol=1e-6)
    assert close.mean() > 0.999, (net, close.mean())
    np.testing.assert_allclose(got, want, atol=2.1 * 2e-4, err_msg=net)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def test_two_processes_match_one_process():
  """jax.distributed on localhost: 2 processes × 1 CPU device vs 1 process × 2 devices."""
  steps, port = 2, _free_port()
  procs = [_run_worker("multi_process", i, 2, port, steps, devices=1) for i in range(2)]
  single_proc = _run_worker("multi_process", 0, 1, 0, steps, devices=2)
  results = [_result(p) for p in procs]
  single = _result(single_proc)
  assert [r["process"] for r in results] == [0, 1]
  assert all(r["processes"] == 2 and r["devices"] == 2 and r["local_devices"] == 1
             for r in results)
  # Both processes see the same global losses and the same replicated state...
  assert results[0]["losses"] == results[1]["losses"]
  np.testing.assert_allclose(results[0]["g"], results[1]["g"], rtol=1e-6)
  # ...equal (up to float32 summation order) to one process reading the whole global batch.
  for got, want in zip(results[0]["losses"], single["losses"]):
    for k in want:
      np.testing.assert_allclose(got[k], want[k], rtol=1e-4, err_msg=k)
  # Parameters: Adam moves each by ≈ lr·sign(gradient) per step, and where a gradient is ~0
  # the summation order decides its sign, so per-leaf sums agree only to a few lr (2e-4) steps.
  np.testing.assert_allclose(results[0]["g"], single["g"], rtol=1e-2, atol=1e-2)
  np.testing.assert_allclose(results[0]["d_stats"], single["d_stats"], rtol=1e-3, atol=1e-4)


def test_train_dataset_shards_partition_the_global_batch():
  from colorjax.data import pipeline
  config = make_tiny_config()
  records = _records(config)
  whole = iter(pipeline.train_dataset(records, 32, 4, seed=3))
  shards = [iter(pipeline.train_dataset(records, 32, 2, seed=3, shard_index=i, shard_count=2))
            for i in range(2)]
  for _ in range(3):
    want = next(whole)["L"]
    got = [next(s)["L"] for s in shards]
    # Process i holds global examples i, i+2, ... of the single-process stream.
    np.testing.assert_array_equal(got[0], want[0::2])
    np.testing.assert_array_equal(got[1], want[1::2])


def test_bfloat16_keeps_params_stats_losses_float32_and_computes_in_bfloat16():
  from colorjax import config_lib, train
  from colorjax.data import pipeline
  config = config_lib.finalize(make_tiny_config(dtype="bfloat16"))
  trainer = train.Trainer(config)
  state = trainer.init(0)
  batch = next(iter(pipeline.train_dataset(_records(config), 32, 4, seed=0)))
  jaxpr = jax.make_jaxpr(lambda p, s, L: trainer.g_model.apply(
      {"params": p, "batch_stats": s}, L, train=True, mutable=["batch_stats"]))(
          state.g.params, state.g.batch_stats, batch["L"])
  convs = [line for line in str(jaxpr).splitlines() if "conv_general_dilated" in line]
  assert convs and all("bf16[" in line for line in convs), "convolutions must run in bfloat16"
  state, metrics = trainer.gan_step(state, trainer.shard_batch(batch))
  for leaf in jax.tree.leaves((state.g, state.d)):      # params, BN statistics, Adam moments
    assert leaf.dtype == jnp.float32 or leaf.dtype == jnp.int32, leaf.dtype   # int32: Adam count
  assert all(v.dtype == jnp.float32 for v in metrics.values())
  # BN running statistics were updated (in float32) from the bfloat16 activations.
  stats = state.g.batch_stats["encoder"]["bn1"]
  assert stats["mean"].dtype == jnp.float32 and float(jnp.abs(stats["mean"]).sum()) > 0


def test_bfloat16_tiny_model_overfits_a_fixed_batch():
  from colorjax import config_lib, train
  from colorjax.data import pipeline
  config = config_lib.finalize(make_tiny_config(
      dtype="bfloat16", **{"optim.lr_g": 2e-3, "optim.lr_d": 2e-4}))
  trainer = train.Trainer(config)
  state = trainer.init(0)
  batch = trainer.shard_batch(next(iter(pipeline.train_dataset(_records(config), 32, 4, seed=0))))
  l1 = []
  for _ in range(60):
    state, metrics = trainer.gan_step(state, batch)
    l1.append(float(metrics["g_l1"]))
    assert np.isfinite(float(metrics["d_loss"]))
  assert np.mean(l1[-5:]) < 0.5 * np.mean(l1[:5]), l1


if __name__ == "__main__":
  mode, rest = sys.argv[1], [int(a) for a in sys.argv[2:]]
  result = _data_parallel_worker() if mode == "data_parallel" else _multi_process_worker(*rest)
  print(json.dumps(result))
