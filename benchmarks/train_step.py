"""Throughput of colorjax's full D+G training step (`Trainer.gan_step`), optionally beside PyTorch.

Prints the device, images/s (median over the timed steps, after warm-up) and the achieved
TFLOP/s from XLA's cost analysis of the compiled step; with --peak also a measured matmul peak
in the same dtype and the model FLOP utilisation against it. When torch is importable in this
environment (a benchmark-only extra; see benchmarks/peer_torch.py) the same step in PyTorch runs
in a worker subprocess, its steps interleaved one for one with JAX's so that both see the same
machine load, and the ratio is printed.

  python benchmarks/train_step.py --batch 16 --size 256 --dtype float32 --steps 5
  python benchmarks/train_step.py --batch 64 --size 256 --peak          # GPU: bfloat16 default

XLA flags are passed with --xla_flags (appended to $XLA_FLAGS before jax is imported). The
flag launch.py sets (colorjax/xla_flags.py) is added too, unless --stock_xla.
--profile traces two more steps with jax.profiler and prints where the device time goes, by
kind of operation (forward and input-gradient convolutions, weight-gradient convolutions,
layout copies, the rest).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

def parse_args(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--batch", type=int, default=16, help="global batch (images per step)")
  p.add_argument("--size", type=int, default=256, help="image side in px, multiple of 32")
  p.add_argument("--dtype", default="", choices=("", "float32", "bfloat16"),
                 help="compute dtype; default bfloat16 on GPU/TPU, float32 on CPU")
  p.add_argument("--steps", type=int, default=5, help="timed steps (median reported)")
  p.add_argument("--warmup", type=int, default=3, help="untimed steps after compilation")
  p.add_argument("--encoder", default="resnet34", choices=("resnet34", "resnet18", "resnet10"))
  p.add_argument("--width", type=int, default=64, help="encoder width (64 = full size)")
  p.add_argument("--disc_width", type=int, default=64)
  p.add_argument("--peer", default="auto", choices=("auto", "on", "off"),
                 help="PyTorch peer: auto = when torch is importable")
  p.add_argument("--order", default="interleaved", choices=("interleaved", "sequential"),
                 help="peer steps between JAX's (same load) or after them (each alone)")
  p.add_argument("--peak", action="store_true", help="also measure a dense matmul peak")
  p.add_argument("--xla_flags", default="", help="extra XLA_FLAGS for this run")
  p.add_argument("--stock_xla", action="store_true",
                 help="do not add colorjax's XLA flag (colorjax/xla_flags.py)")
  p.add_argument("--profile", action="store_true",
                 help="also print the step's device time by kind of operation")
  return p.parse_args(argv)


class TorchPeer:
  """benchmarks/peer_torch.py in a subprocess; `step()` runs one timed step there."""

  def __init__(self, batch: int, size: int):
    here = os.path.dirname(os.path.abspath(__file__))
    self.proc = subprocess.Popen(
        [sys.executable, "-u", "-c", _PEER_SERVER, here, str(batch), str(size)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    self.source = self._read()

  def _read(self) -> str:
    line = self.proc.stdout.readline()
    if not line:
      raise RuntimeError("the PyTorch peer exited (see its error above)")
    return line.strip()

  def step(self) -> float:
    self.proc.stdin.write("step\n")
    self.proc.stdin.flush()
    return float(self._read().split()[0])

  def close(self) -> None:
    self.proc.stdin.close()
    self.proc.wait(timeout=60)


_PEER_SERVER = r"""
import sys, time, warnings
sys.path.insert(0, sys.argv[1])
warnings.filterwarnings("ignore")
import torch, peer_torch
step = peer_torch.Pix2PixStep()
L, ab = peer_torch.make_batch(int(sys.argv[2]), int(sys.argv[3]))
print(f"{step.g.source}; torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
for line in sys.stdin:
  t = time.perf_counter()
  step(L, ab)
  print(time.perf_counter() - t, flush=True)
"""


def torch_available() -> bool:
  import importlib.util
  return importlib.util.find_spec("torch") is not None


def main(argv=None) -> dict:
  args = parse_args(argv)
  if args.xla_flags:
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + args.xla_flags).strip()
  if not args.stock_xla:
    from colorjax import xla_flags
    xla_flags.apply()
  import jax
  import jax.numpy as jnp
  import numpy as np

  dev = jax.devices()[0]
  print(f"device: {jax.device_count()} × {dev.platform} {dev.device_kind}; jax {jax.__version__}; "
        f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}", flush=True)
  config, compiled, state, batch, compile_s = compiled_step(
      args.batch, args.size, args.dtype, args.encoder, args.width, args.disc_width)
  s = args.size
  flops = _flops(compiled)

  def jax_step(state):
    t = time.perf_counter()
    state, metrics = compiled(state, batch)
    jax.block_until_ready((state, metrics))
    return state, time.perf_counter() - t, metrics

  peer = None
  if args.peer == "on" or (args.peer == "auto" and torch_available()):
    peer = TorchPeer(args.batch, args.size)
    print(f"peer: {peer.source}", flush=True)
  # interleaved (default): one step each in turn, so both see the same machine load;
  # sequential: all of JAX's steps, then all of the peer's, each on an otherwise idle machine.
  phases = [("jax", "peer")] if args.order == "interleaved" else [("jax",), ("peer",)]
  jax_times, peer_times = [], []
  for phase in phases:
    for i in range(args.warmup + args.steps):
      if "jax" in phase:
        state, dt, metrics = jax_step(state)
        if i >= args.warmup:
          jax_times.append(dt)
      if "peer" in phase and peer:
        dt = peer.step()
        if i >= args.warmup:
          peer_times.append(dt)
  if peer:
    peer.close()
  losses = {k: float(v) for k, v in jax.device_get(metrics).items()}
  assert all(np.isfinite(v) for v in losses.values()), losses

  med = statistics.median(jax_times)
  result = {"device": f"{dev.platform} {dev.device_kind}", "batch": args.batch, "size": s,
            "dtype": config.dtype, "compile_s": compile_s, "step_s": med,
            "img_per_s": args.batch / med, "gflop_per_step": flops / 1e9,
            "tflop_per_s": flops / med / 1e12}
  rows = [("colorjax (JAX)", jax_times, args.batch / med, flops / med / 1e12)]
  if peer:
    pmed = statistics.median(peer_times)
    result.update(peer_step_s=pmed, peer_img_per_s=args.batch / pmed, ratio=pmed / med)
    rows.append(("PyTorch peer", peer_times, args.batch / pmed, flops / pmed / 1e12))
  if args.peak:
    peak = _matmul_peak(jnp.dtype(config.dtype))
    result.update(peak_tflop_per_s=peak, mfu=result["tflop_per_s"] / peak)

  print(f"compile {compile_s:.1f} s; XLA cost analysis: {flops / 1e9:.1f} GFLOP per step "
        f"({flops / 1e9 / args.batch:.2f} per image)")
  print(f"{'':16} {'median s/step':>13} {'img/s':>8} {'TFLOP/s':>8}  steps (s)")
  for name, times, ips, tf in rows:
    print(f"{name:16} {statistics.median(times):13.3f} {ips:8.2f} {tf:8.3f}  "
          + " ".join(f"{t:.2f}" for t in times))
  if peer:
    print(f"ratio JAX/PyTorch images/s: {result['ratio']:.2f}×")
  if args.peak:
    print(f"matmul peak ({config.dtype}): {result['peak_tflop_per_s']:.2f} TFLOP/s; "
          f"model FLOP utilisation {100 * result['mfu']:.1f}%")
  print(f"losses after the last step: {losses}")
  if args.profile:
    result["profile"] = profile_step(compiled, state, batch)
  return result


def compiled_step(batch: int, size: int, dtype: str = "", encoder: str = "resnet34",
                  width: int = 64, disc_width: int = 64, decoder_widths: tuple | None = None):
  """(config, compiled gan_step, initial state, a random batch, compile seconds) for a step of
  this shape (the recipe's decoder unless `decoder_widths`)."""
  import numpy as np
  from colorjax import config_lib
  from colorjax.train import Trainer
  from configs import default

  config = default.get_config()
  config.image_size, config.batch_size, config.dtype = size, batch, dtype
  config.model.encoder, config.model.encoder_width = encoder, width
  config.disc.width = disc_width
  if decoder_widths:
    config.model.decoder_widths = tuple(decoder_widths)
  config.data.domains = ("toon",)          # the step reads no data; a domain needing no folder
  config = config_lib.finalize(config)
  config_lib.validate(config)
  print(f"step: D+G (Trainer.gan_step), batch {batch}, {size} px, {config.dtype}, "
        f"G {encoder}-UNet width {width}, D width {disc_width}", flush=True)
  trainer = Trainer(config)
  state = trainer.init(0)
  rng = np.random.default_rng(0)
  data = trainer.shard_batch({
      "L": rng.uniform(-1, 1, (batch, size, size, 1)).astype(np.float32),
      "ab": rng.uniform(-1, 1, (batch, size, size, 2)).astype(np.float32)})
  t = time.perf_counter()
  compiled = trainer.gan_step.lower(state, data).compile()
  return config, compiled, state, data, time.perf_counter() - t


def _op_kinds(hlo_text: str) -> dict:
  """Kind of each instruction of an optimised HLO module that holds a convolution or a library
  matmul. XLA:CPU: 'weight gradient' when the convolution's window is larger than 7 (XLA writes
  dL/dW as a convolution whose window is the activation map), else 'forward/input gradient'.
  XLA:GPU: cuDNN convolutions are custom calls named by direction (`__cudnn$convBackwardFilter`
  is the weight gradient); cuBLAS and Triton matmuls are 'matmul'."""
  import re
  comps = dict(re.findall(r"^%?([\w.\-]+) [^\n]*\{\n(.*?)\n\}", hlo_text, re.S | re.M))
  kinds = {}
  for name, rest in re.findall(r"%([\w.\-]+) = ([^\n]*)", hlo_text):
    called = re.search(r"calls=%([\w.\-]+)", rest)
    body = rest + "\n" + (comps.get(called.group(1), "") if called else "")
    target = re.search(r'custom_call_target="__(cudnn|cublas)\$(\w+)', body)
    window = re.search(r"convolution\([^\n]*window=\{size=([\dx]+)", body)
    if target and target.group(2).startswith("conv"):
      kinds[name] = ("convolution, weight gradient" if target.group(2) == "convBackwardFilter"
                     else "convolution, forward/input gradient")
    elif (target and target.group(1) == "cublas") or "triton_gemm" in body:
      kinds[name] = "matmul"
    elif target:
      kinds[name] = f"cuDNN {target.group(2)}"
    elif window:
      big = max(int(v) for v in window.group(1).split("x")) > 7
      kinds[name] = "convolution, weight gradient" if big else "convolution, forward/input gradient"
  return kinds


def _kernel_kind(kernel: str) -> str | None:
  """Kind of a GPU kernel from its name, for kernels the HLO does not name (cuDNN, cuBLAS)."""
  k = kernel.lower()
  if "wgrad" in k:
    return "convolution, weight gradient"
  if any(w in k for w in ("dgrad", "fprop", "conv", "cudnn")):
    return "convolution, forward/input gradient"
  if "gemm" in k or "cutlass" in k or "cublas" in k:
    return "matmul"
  if "memcpy" in k or "memset" in k:
    return "memory copy/set"
  return None


def traced_ops(compiled, state, batch, steps: int = 2,
               seen: list | None = None) -> list[tuple[str, str, float]]:
  """(kind, operation, ms per step) of every device operation in `steps` traced steps.

  On CPU the operations are the HLO instructions the thunk executor ran (summed over its
  threads); on GPU the kernels of the device's streams, each named by the HLO instruction
  that launched it when the trace says so (its `hlo_op`), else by the kernel name. `seen`, if
  given, receives (plane, line, events) of each trace line read.
  """
  import glob
  import re
  import tempfile

  import jax
  from jax.profiler import ProfileData
  kinds = _op_kinds(compiled.as_text())
  with tempfile.TemporaryDirectory() as d:
    with jax.profiler.trace(d):
      for _ in range(steps):
        state, metrics = compiled(state, batch)
        jax.block_until_ready((state, metrics))
    data = ProfileData.from_file(glob.glob(f"{d}/**/*.xplane.pb", recursive=True)[0])
  gpu = [p for p in data.planes if p.name.startswith("/device:GPU")]
  ops = []
  for plane in gpu or data.planes:
    lines = list(plane.lines)
    if gpu:       # kernels on the stream lines; a derived "XLA Ops" line would count them twice
      streams = [l for l in lines if l.name.startswith("Stream")]
      lines = streams or [l for l in lines if l.name == "XLA Ops"] or lines
    for line in lines:
      if seen is not None:
        seen.append((plane.name, line.name, len(list(line.events))))
      for ev in line.events:
        name, stats = ev.name, dict(ev.stats)
        if not gpu and ("hlo_op" not in stats or name.startswith(("ThunkExecutor", "$"))):
          continue                      # dispatch, executor bookkeeping and Python frames
        hlo = stats.get("hlo_op", name)
        hlo = hlo.decode() if isinstance(hlo, bytes) else str(hlo)
        kind = (kinds.get(hlo) or (_kernel_kind(name) if gpu else None)
                or ("layout copy/transpose" if re.match(r"(transpose|copy)", hlo)
                    else "other (elementwise, BatchNorm, reductions, ...)"))
        ops.append((kind, hlo, ev.duration_ns / 1e6 / steps))
  return ops


def profile_step(compiled, state, batch, steps: int = 2) -> dict:
  """Device time of `steps` traced steps by kind of operation, printed and returned (ms/step)."""
  import collections
  total = collections.Counter()
  for kind, _, ms in traced_ops(compiled, state, batch, steps):
    total[kind] += ms
  whole = sum(total.values()) or 1.0
  print(f"device time by kind of operation (ms/step, summed over threads/streams; {steps} "
        "traced steps):")
  for kind, ms in total.most_common():
    print(f"  {kind:48s} {ms:9.1f}  {100 * ms / whole:5.1f}%")
  return dict(total)


def _flops(compiled) -> float:
  """Total FLOPs of a compiled executable from XLA's cost analysis (0 when unavailable)."""
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):       # older jax: one dict per program
    cost = cost[0] if cost else {}
  return float((cost or {}).get("flops", 0.0))


def _matmul_peak(dtype, n: int | None = None, reps: int = 5) -> float:
  """Best TFLOP/s of an n×n @ n×n matmul chain in `dtype` (float32 accumulation)."""
  import jax
  import jax.numpy as jnp
  n = n or (8192 if jax.default_backend() != "cpu" else 2048)
  k = 10

  @jax.jit
  def chain(a, b):
    for _ in range(k):                      # k matmuls per call amortise the dispatch
      a = jnp.dot(a, b, preferred_element_type=jnp.float32).astype(dtype)
    return a

  a = jax.random.normal(jax.random.key(0), (n, n), dtype) / n**0.5
  b = jax.random.normal(jax.random.key(1), (n, n), dtype) / n**0.5
  chain(a, b).block_until_ready()
  best = float("inf")
  for _ in range(reps):
    t = time.perf_counter()
    chain(a, b).block_until_ready()
    best = min(best, time.perf_counter() - t)
  return 2 * n**3 * k / best / 1e12


if __name__ == "__main__":
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  main()
