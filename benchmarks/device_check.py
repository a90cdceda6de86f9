"""One prepared GPU check: environment, correctness, speed and a short real training run.

  python benchmarks/device_check.py OUT_DIR [--dry-run] [--data DIR] [--budget S] [--sections a,b]

Writes OUT_DIR/report.md and OUT_DIR/report.json (plus device_check.log, samples.jpg,
eval_per_image.csv, train_metrics.jsonl and the bfloat16 step's optimised HLO), at most 8 flat
files, so that everything comes back from the device tool's $OUT. Sections, in run order:

  env            device kind and memory, jax/jaxlib/CUDA/cuDNN versions, packages, CPUs
  step_bfloat16  the full D+G step (benchmarks/train_step.py) at batch 64, 256 px: img/s,
                 TFLOP/s from XLA's cost analysis, model FLOP utilisation against a bfloat16
                 matmul peak measured here; where MFU < 35%, device time by kind of op
  step_float32   the same step in float32 (MFU against the same bfloat16 peak)
  tests          `pytest -m device` (models, train step, metrics, inference, checkpoints) in a
                 subprocess on the device
  overfit        the tiny model overfits one fixed batch in bfloat16: mean G L1 of the last 5
                 of 60 steps below half of the first 5
  metrics        ΔE00 (Mpx/s) and SSIM (img/s) throughput (benchmarks/metrics.py pieces)
  pipeline       the grain input pipeline's img/s from the carried JPEGs at 256 px with the
                 machine's CPU workers (benchmarks/pipeline.py), against the step's img/s
  train          the study's recipe (configs/mixed.py) at 256 px on the carried folders for
                 about 3 minutes (step cap; SIGTERM at the time budget: the real preemption
                 path), then evaluation on held-out folders, the losses, the checkpoint, and
                 colorized samples
  vivid          only when --sections names it: configs/vivid.py trained and evaluated as
                 train is; the goals compare its model with train's on each test folder
                 (issue 16: colourfulness ≥ 80% of the truth's, ΔE00 ≤ +5% vs the recipe).
                 Without train in the same check, --baseline REPORT.json names an earlier
                 check's report whose train section is the recipe

Each section runs under a time budget inside one worker process (one JAX start); the parent
(no JAX) watches it, kills a section that overruns and starts a new worker for the rest, so a
failed, hung or crashed section is recorded and the check goes on. The whole check ends within
--budget seconds (default 450: with the wrapper's install about 8 minutes on one H100/H200).
--dry-run does all of it at tiny sizes on the CPU (synthetic JPEGs unless --data): what CI
runs (tests/test_device_check.py).

On a session with a GPU (the device tool's `run`), from the session's repo root:
  1. here, once:   bash benchmarks/device_prepare.sh
     downloads the wheels the device lacks into .whl/ (grain, dm-pix, ml-collections,
     tensorboardX, array-record, portpicker), writes build/device_data/ (JPEGs made from
     ../shared/data: train/{cartoon,movie}, test/{cartoon,movie}), checks the 64 MiB carry
     budget and prints the exact run call, which is:
  2. run(command="bash benchmarks/device_check.sh", carry=[".whl", "build/device_data"],
         timeout_s=540)
     The wrapper installs the wheels into /tmp/site, the project with `pip install --no-deps
     -e .` (the device's JAX untouched), and runs this script into $OUT.
  A rerun of some sections: command "bash benchmarks/device_check.sh --sections train
  --budget 240".
  3. with 6 minutes of device time left, vivid against that check's recipe: here,
     cp FILES_AT/report.json build/device_baseline.json, then
     run(command="bash benchmarks/device_check.sh --sections vivid --budget 300 --baseline
         build/device_baseline.json", carry=[".whl", "build/device_data",
         "build/device_baseline.json"], timeout_s=400)
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import datetime
import gzip
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
ORDER = ("env", "step_bfloat16", "step_float32", "tests", "overfit", "metrics", "pipeline", "train")
OPTIONAL = ("vivid",)          # only when --sections names them (past the default's budget)
SECTIONS = ORDER + OPTIONAL
TITLES = {"env": "Environment", "step_bfloat16": "D+G step, bfloat16",
          "step_float32": "D+G step, float32", "tests": "Device tests (pytest -m device)",
          "overfit": "Tiny model overfits a fixed batch (bfloat16)",
          "metrics": "ΔE00 and SSIM throughput", "pipeline": "Input pipeline",
          "train": "Real training, evaluation, samples",
          "vivid": "Vivid colour (configs/vivid.py), trained and evaluated as the recipe"}
# Seconds: the most each section may take (GPU, dry run), and the least worth starting it with.
# The dry run's caps only catch a hung section: a shared CI machine can be 5x slower than an
# idle 2-core one, where each section takes 1-25 s.
BUDGET = {"env": (40, 300), "step_bfloat16": (200, 300), "step_float32": (150, 300),
          "tests": (100, 300), "overfit": (50, 300), "metrics": (40, 300), "pipeline": (50, 300),
          "train": (270, 300), "vivid": (270, 300)}
MIN_BUDGET = {"train": (90, 30), "vivid": (90, 30)}        # others: (15, 10)
MFU_GOAL, DELTA_E_GOAL_MPX = 0.35, 1000.0
GRACE_S = 20          # past a section's budget before the parent kills the worker
OUT_FILES = ("report.md", "report.json", "device_check.log", "samples.jpg",
             "eval_per_image.csv", "train_metrics.jsonl", "step_bfloat16_hlo.txt.gz",
             "samples_vivid.jpg")
VIVID_COLOUR, VIVID_DELTA_E = 0.8, 0.05   # issue 16: ≥ 80% of the truth's M, ≤ +5% ΔE00


def sizes(dry: bool) -> dict:
  """The shapes each section uses: the real ones, or tiny ones for a CPU dry run."""
  if not dry:
    return dict(batch=64, size=256, encoder="resnet34", width=64, disc_width=64, warmup=3,
                steps=10, decoder_widths=None, peak_n=8192, overfit_steps=60,
                de_pixels=1 << 24, ssim_batch=64, ssim_size=256, repeats=5, pipe_batch=64,
                pipe_batches=16, train_size=256, train_batch=16, steps_per_epoch=500,
                train_steps=6000, train_seconds=200, log_every=25, samples_per_domain=3)
  return dict(batch=4, size=32, encoder="resnet10", width=8, disc_width=8, warmup=0, steps=2,
              decoder_widths=(16, 16, 8, 8, 8), peak_n=256, overfit_steps=20, de_pixels=20000,
              ssim_batch=2, ssim_size=64, repeats=1, pipe_batch=4, pipe_batches=2,
              train_size=32, train_batch=4, steps_per_epoch=2, train_steps=4,
              train_seconds=150, log_every=1, samples_per_domain=1)


# ----------------------------------------------------------------------------------------------
# Data: the folders the pipeline and training sections read


def prepare_data(dst: str, source: str = SHARED, short_side: int = 288, max_mb: float = 40.0,
                 quality: int = 90) -> dict:
  """JPEG folders for the device from /work/shared/data (images and video frames), resized so
  the short side is `short_side` px, under `max_mb` MiB in all. Returns a count per folder.

  dst/train/cartoon: Big Buck Bunny (every 2nd frame), Sintel frames except the held-out shots
  dst/train/movie:   Tears of Steel (first 3/4 of its frames), Kodak kodim01-18
  dst/test/cartoon:  Caminandes (a film not trained on; every 4th frame), held-out Sintel shots
  dst/test/movie:    Tears of Steel (last 1/4), Kodak kodim19-24
  Sintel shots are split by shot (the manifest's group), never by frame.
  """
  import numpy as np
  from PIL import Image
  test_shots = ("sintel_market_5", "sintel_temple_3", "sintel_unknownA", "sintel_unknownB")
  jobs = []          # (folder, name, loader)
  for name in sorted(os.listdir(os.path.join(source, "animation"))):
    split = "test" if name.startswith(test_shots) else "train"
    jobs.append((f"{split}/cartoon", name, os.path.join(source, "animation", name)))
  for name in sorted(os.listdir(os.path.join(source, "photos"))):
    split = "test" if int("".join(c for c in name if c.isdigit()) or 0) >= 19 else "train"
    jobs.append((f"{split}/movie", name, os.path.join(source, "photos", name)))
  if os.path.isdir(dst):
    shutil.rmtree(dst)
  counts, total = collections.Counter(), 0

  def save(folder, name, im):
    nonlocal total
    w, h = im.size
    scale = short_side / min(w, h)
    im = im.convert("RGB").resize((round(w * scale), round(h * scale)), Image.BICUBIC)
    os.makedirs(os.path.join(dst, folder), exist_ok=True)
    path = os.path.join(dst, folder, os.path.splitext(name)[0] + ".jpg")
    im.save(path, quality=quality)
    total += os.path.getsize(path)
    counts[folder] += 1
    if total > max_mb * 2**20:
      raise RuntimeError(f"{dst}: over {max_mb} MiB; lower short_side or max_mb")

  for folder, name, path in jobs:
    with Image.open(path) as im:
      save(folder, name, im)
  clips = (("big_buck_bunny_0_30.webm", 2, lambda i, n: "train/cartoon"),
           ("caminandes_llama_drama_10s.mp4", 4, lambda i, n: "test/cartoon"),
           ("tears_of_steel_10s.mp4", 1, lambda i, n: "train/movie" if i < 3 * n // 4
            else "test/movie"))
  for clip, every, where in clips:
    path = os.path.join(source, "video", clip)
    if not os.path.exists(path):
      continue
    frames = _video_frames(path)
    stem = clip.split(".")[0]
    for i, frame in enumerate(frames):
      if i % every == 0:
        save(where(i, len(frames)), f"{stem}_{i:04d}", Image.fromarray(np.asarray(frame)))
  return {"folders": dict(sorted(counts.items())), "mib": round(total / 2**20, 1),
          "short_side": short_side}


def _video_frames(path: str) -> list:
  import av
  with av.open(path) as container:
    return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def synthetic_data(dst: str) -> str:
  """Tiny JPEG folders in the layout of `prepare_data`, for the dry run."""
  import pipeline as bench_pipeline
  for folder, n in (("train/cartoon", 12), ("train/movie", 12), ("test/cartoon", 2),
                    ("test/movie", 2)):
    os.makedirs(os.path.join(dst, folder), exist_ok=True)
    # test images at another size: other pixels than the training images
    bench_pipeline.synthetic_jpegs(os.path.join(dst, folder), n,
                                   (64, 48) if folder.startswith("train") else (56, 40))
  return dst


def data_folders(data: str) -> dict:
  folders = {f"{s}/{d}": os.path.join(data, s, d) for s in ("train", "test")
             for d in ("cartoon", "movie")}
  missing = [f for f in folders.values() if not os.path.isdir(f)]
  if missing:
    raise FileNotFoundError(f"--data={data}: missing {', '.join(missing)} (make it with "
                            "benchmarks/device_prepare.sh and carry build/device_data)")
  return folders


# ----------------------------------------------------------------------------------------------
# Sections (run in the worker process; each returns a JSON-able dict)


class Ctx:
  """What the sections share: options, sizes, folders, and results of earlier sections."""

  def __init__(self, args, work: str, deadline: float):
    self.args, self.dry, self.work, self.deadline = args, args.dry_run, work, deadline
    self.s = sizes(args.dry_run)
    self.out = os.path.abspath(args.out_dir)
    self.results: dict = {}     # shared between sections (the peak, the step's img/s)
    self.partial: dict = {}     # the running section's result so far: kept if it fails
    self.budget = 0.0

  def data(self) -> str:
    if self.args.data:
      return os.path.abspath(self.args.data)
    if not self.dry:
      raise FileNotFoundError("no --data folder (make build/device_data with "
                              "benchmarks/device_prepare.sh and carry it)")
    path = os.path.join(self.work, "data")
    return path if os.path.isdir(path) else synthetic_data(path)


def section_env(ctx: Ctx) -> dict:
  import importlib.metadata as md
  import platform
  import jax
  dev = jax.devices()[0]
  out = {"platform": dev.platform, "device_kind": dev.device_kind,
         "device_count": jax.device_count(), "python": platform.python_version(),
         "cpus": os.cpu_count(), "xla_flags": os.environ.get("XLA_FLAGS", ""),
         "backend": jax.default_backend()}
  stats = _memory_stats(dev)
  if stats.get("bytes_limit"):
    out["memory_gib"] = round(stats["bytes_limit"] / 2**30, 1)
  versions = {}
  for name in ("jax", "jaxlib", "jax-cuda13-plugin", "jax-cuda13-pjrt", "jax-cuda12-plugin",
               "jax-cuda12-pjrt", "nvidia-cudnn-cu13", "nvidia-cuda-runtime",
               "nvidia-cuda-runtime-cu13", "nvidia-cublas", "flax", "optax", "orbax-checkpoint",
               "chex", "grain", "dm-pix", "ml-collections", "tensorboardX", "numpy", "pillow",
               "scikit-image", "colorjax"):
    with contextlib.suppress(md.PackageNotFoundError):
      versions[name] = md.version(name)
  out["versions"] = versions
  with contextlib.suppress(Exception):
    from jax._src.lib import cuda_versions
    if cuda_versions is not None:
      out["cuda"] = {k.replace("_get_version", ""): getattr(cuda_versions, k)()
                     for k in dir(cuda_versions) if k.endswith("_get_version")}
  smi = _run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.max.sm",
              "--format=csv,noheader"])
  if smi:
    out["nvidia_smi"] = smi.strip()
    header = _run(["nvidia-smi"]) or ""
    if "CUDA Version" in header:
      out["driver_cuda"] = header.split("CUDA Version:")[1].split()[0]
  return out


def _memory_stats(dev) -> dict:
  try:
    return dev.memory_stats() or {}
  except Exception:
    return {}


def _run(cmd) -> str | None:
  try:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout
  except (OSError, subprocess.SubprocessError):
    return None


def section_step(ctx: Ctx, dtype: str) -> dict:
  import jax
  import jax.numpy as jnp
  import numpy as np
  import train_step
  from colorjax import train
  s = ctx.s
  # Dry run: float32 for both (XLA:CPU compiles the bfloat16 step 3x slower; the overfit
  # section proves the bfloat16 model on every run).
  config, compiled, state, batch, compile_s = train_step.compiled_step(
      s["batch"], s["size"], "float32" if ctx.dry else dtype, s["encoder"], s["width"],
      s["disc_width"], s["decoder_widths"])
  flops_xla = train_step._flops(compiled)
  lowered = train.Trainer(config).gan_step.lower(state, batch).cost_analysis()
  lowered = lowered[0] if isinstance(lowered, (list, tuple)) else lowered
  flops_model = float((lowered or {}).get("flops", 0.0))
  # XLA:GPU's count of the optimised program can miss library calls: fall back to the
  # backend-independent count of the program as traced.
  flops = flops_xla if flops_xla >= 0.5 * flops_model else flops_model
  times = []
  for i in range(s["warmup"] + s["steps"]):
    t = time.perf_counter()
    state, metrics = compiled(state, batch)
    jax.block_until_ready((state, metrics))
    if i >= s["warmup"]:
      times.append(time.perf_counter() - t)
  losses = {k: float(v) for k, v in jax.device_get(metrics).items()}
  step_s = statistics.median(times)
  out = ctx.partial
  out.update(batch=s["batch"], size=s["size"], dtype=config.dtype, encoder=s["encoder"],
             compile_s=compile_s, steps=len(times), step_s=step_s, step_times_s=times,
             img_per_s=s["batch"] / step_s, gflop_per_step=flops / 1e9,
             gflop_per_step_xla=flops_xla / 1e9, gflop_per_step_traced=flops_model / 1e9,
             tflop_per_s=flops / step_s / 1e12, losses=losses,
             losses_finite=bool(all(np.isfinite(v) for v in losses.values())))
  peak = ctx.results.get("peak_tflop_per_s")
  if peak is None:
    t = time.perf_counter()
    peak = train_step._matmul_peak(jnp.bfloat16, n=s["peak_n"])
    ctx.results["peak_tflop_per_s"] = peak
    out["peak_s"] = time.perf_counter() - t
  out.update(peak_bf16_tflop_per_s=peak, peak_n=s["peak_n"], mfu=out["tflop_per_s"] / peak)
  stats = _memory_stats(jax.devices()[0])
  if stats.get("peak_bytes_in_use"):
    out["peak_memory_gib"] = round(stats["peak_bytes_in_use"] / 2**30, 2)
  if dtype == "bfloat16":
    ctx.results["step_img_per_s"] = out["img_per_s"]
    with gzip.open(os.path.join(ctx.out, "step_bfloat16_hlo.txt.gz"), "wt") as f:
      f.write(compiled.as_text())          # for reading why, after the lease
  if out["mfu"] < MFU_GOAL:
    try:
      out["profile"] = _profile(train_step, compiled, state, batch)
    except Exception as e:                 # the numbers above stand without it
      traceback.print_exc()
      out["profile_error"] = f"{type(e).__name__}: {str(e)[:300]}"
  if not out["losses_finite"]:
    raise FloatingPointError(f"non-finite losses after the timed steps: {losses}")
  return out


def _profile(train_step, compiled, state, batch) -> dict:
  """Device time per step by kind of op, the 12 costliest ops, and the trace lines read."""
  seen = []
  ops = train_step.traced_ops(compiled, state, batch, 2, seen)
  kinds, names = collections.Counter(), collections.Counter()
  for kind, name, ms in ops:
    kinds[kind] += ms
    names[(kind, name)] += ms
  whole = sum(kinds.values()) or 1.0
  return {"ms_per_step_by_kind": dict(kinds.most_common()),
          "share_by_kind": {k: v / whole for k, v in kinds.most_common()},
          "top_ops": [{"op": n, "kind": k, "ms": ms} for (k, n), ms in names.most_common(12)],
          "trace_lines": sorted({f"{p} | {l}" for p, l, _ in seen})[:40]}


def section_tests(ctx: Ctx) -> dict:
  import xml.etree.ElementTree as ET
  junit = os.path.join(ctx.work, "junit.xml")
  cmd = [sys.executable, "-m", "pytest", "-q", "-m", "device", "-p", "no:cacheprovider",
         f"--junitxml={junit}", "tests"]
  if ctx.dry:                 # the mechanism, on the two fastest marked tests
    cmd += ["-k", "full_size_matches"]
  # The worker holds most of the device memory already: the tests allocate as they go.
  env = {**os.environ, "XLA_PYTHON_CLIENT_PREALLOCATE": "false", "PYTHONPATH": _pythonpath()}
  t = time.perf_counter()
  try:
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=max(10.0, ctx.budget - 10))
    output, rc = proc.stdout + proc.stderr, proc.returncode
  except subprocess.TimeoutExpired as e:
    output, rc = f"{e.stdout or ''}{e.stderr or ''}\npytest: timed out", "timeout"
  print(output[-6000:], flush=True)
  out = {"command": " ".join(cmd[1:]), "returncode": rc, "seconds": time.perf_counter() - t}
  if os.path.exists(junit):
    suite = ET.parse(junit).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    for key in ("tests", "failures", "errors", "skipped"):
      out[key] = int(suite.get(key, 0))
    out["passed"] = out["tests"] - out["failures"] - out["errors"] - out["skipped"]
    out["failed"] = [f"{case.get('classname')}::{case.get('name')}: "
                     f"{(bad.get('message') or '').strip()[:200]}"
                     for case in suite.iter("testcase")
                     for bad in list(case.findall("failure")) + list(case.findall("error"))]
  if rc != 0:
    raise RuntimeError(f"pytest exit code {rc}: {out.get('failed') or output[-500:]}")
  return out


def _pythonpath() -> str:
  return os.pathsep.join([ROOT, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])


def section_overfit(ctx: Ctx) -> dict:
  import jax
  import numpy as np
  from colorjax import config_lib, train
  from colorjax.data import pipeline
  sys.path.insert(0, os.path.join(ROOT, "tests"))
  from conftest import make_tiny_config       # the tests' tiny model, defined once
  config = config_lib.finalize(make_tiny_config(**{"optim.lr_g": 2e-3, "dtype": "bfloat16"}))
  trainer = train.Trainer(config)
  splits = train.domain_records(config)
  with contextlib.closing(iter(pipeline.train_dataset(
      [splits["toon"].train], config.image_size, 4, seed=0))) as it:
    batch = trainer.shard_batch(next(it))
  state = trainer.init(0)
  l1, t = [], time.perf_counter()
  for _ in range(ctx.s["overfit_steps"]):
    state, metrics = trainer.gan_step(state, batch)
    l1.append(float(metrics["g_l1"]))
  first, last = float(np.mean(l1[:5])), float(np.mean(l1[-5:]))
  out = {"dtype": config.dtype, "steps": len(l1), "seconds": time.perf_counter() - t,
         "g_l1_first5": first, "g_l1_last5": last, "factor": last / first, "goal_factor": 0.5,
         "finite": bool(np.all(np.isfinite(l1))), "g_l1": l1[::5] + [l1[-1]]}
  if not (out["finite"] and last < 0.5 * first):
    raise AssertionError(f"G L1 went {first:.4f} -> {last:.4f} in {len(l1)} bfloat16 steps "
                         "(wanted below half)")
  return out


def section_metrics(ctx: Ctx) -> dict:
  import jax
  import jax.numpy as jnp
  import numpy as np
  import metrics as bench_metrics           # benchmarks/metrics.py
  from colorjax import metrics
  s, rng = ctx.s, np.random.default_rng(0)
  n = s["de_pixels"]
  lab1, lab2 = (jnp.asarray(bench_metrics._random_lab(rng, n).astype(np.float32))
                for _ in range(2))
  nb, px = s["ssim_batch"], s["ssim_size"]
  x = rng.random((nb, px, px, 3)).astype(np.float32)
  y = np.clip(x + 0.1 * rng.standard_normal(x.shape), 0, 1).astype(np.float32)
  x, y = jnp.asarray(x), jnp.asarray(y)
  de, ss = jax.jit(metrics.ciede2000), jax.jit(metrics.ssim)
  t = bench_metrics._median_times({"de": lambda: de(lab1, lab2).block_until_ready(),
                                   "ssim": lambda: ss(x, y).block_until_ready()}, s["repeats"])
  return {"delta_e_pixels": n, "delta_e_mpx_per_s": n / t["de"] / 1e6,
          "ssim_batch": nb, "ssim_size": px, "ssim_img_per_s": nb / t["ssim"],
          "repeats": s["repeats"]}


def section_pipeline(ctx: Ctx) -> dict:
  import pipeline as bench_pipeline
  from colorjax.data import sources
  folders = data_folders(ctx.data())
  paths = [p for key in ("train/cartoon", "train/movie") for p in sources.list_images(folders[key])]
  records = [("file", p) for p in paths]
  cpus = os.cpu_count() or 1
  workers = [1] if ctx.dry else sorted({max(1, cpus // 2), cpus})
  s, rows = ctx.s, []
  for w in workers:
    ips, first = bench_pipeline.measure(records, s["size"], s["pipe_batch"], w, s["pipe_batches"])
    rows.append({"workers": w, "img_per_s": ips, "first_batch_s": first})
    print(f"pipeline: {w} workers {ips:.1f} img/s", flush=True)
  best = max(r["img_per_s"] for r in rows)
  from PIL import Image
  with Image.open(paths[0]) as im:
    example = im.size
  out = {"images": len(records), "example_size": list(example), "size": s["size"],
         "batch": s["pipe_batch"], "batches": s["pipe_batches"], "cpus": cpus, "rows": rows,
         "best_img_per_s": best}
  step = ctx.results.get("step_img_per_s")
  if step:
    out.update(step_img_per_s=step, pipeline_over_step=best / step)
  return out


def section_train(ctx: Ctx, name: str = "mixed") -> dict:
  """configs/NAME.py at 256 px on the carried folders, evaluated on the held-out ones. The
  recipe ("mixed") also writes its metrics, per-image results and samples.jpg; another config
  writes samples_NAME.jpg and is compared with the recipe in the goals (`vivid`)."""
  import importlib
  import numpy as np
  from colorjax import checkpoints, evaluate, inference, train
  from colorjax.logs import read_metrics
  s = ctx.s
  recipe = name == "mixed"
  folders = data_folders(ctx.data())
  config = importlib.import_module(f"configs.{name}").get_config()
  config.image_size, config.batch_size = s["train_size"], s["train_batch"]
  config.steps_per_epoch = s["steps_per_epoch"]
  config.num_epochs = max(1, s["train_steps"] // s["steps_per_epoch"])
  config.log_every_steps = s["log_every"]
  config.data.cartoon_dir, config.data.movie_dir = folders["train/cartoon"], folders["train/movie"]
  config.data.train_size, config.data.test_size = 0.0, 0.0     # all; held-out folders below
  config.data.workers = 0 if ctx.dry else min(16, os.cpu_count() or 1)
  if ctx.dry:
    config.model.encoder, config.model.encoder_width = "resnet10", 8
    config.model.decoder_widths = (16, 16, 8, 8, 8)
    config.disc.width, config.data.eval_batch_size, config.data.val_size = 8, 4, 2.0
  workdir = os.path.join(ctx.work, "run" if recipe else f"run_{name}")
  shutil.rmtree(workdir, ignore_errors=True)
  # Stop at the time budget as a preempted job would be (finish the step, checkpoint, exit).
  seconds = min(s["train_seconds"], max(10.0, ctx.budget - (40 if not ctx.dry else 30)))
  timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGTERM))
  old = signal.signal(signal.SIGTERM, lambda *a: None)    # a late signal is harmless
  t0 = time.perf_counter()
  timer.start()
  try:
    summary = train.train_and_evaluate(config, workdir)
  finally:
    timer.cancel()
    signal.signal(signal.SIGTERM, old)
  train_s = time.perf_counter() - t0
  out = ctx.partial
  records = read_metrics(workdir)
  steps = [r for r in records if r.get("type") == "step"]
  epochs = [r for r in records if r.get("type") == "epoch"]
  if recipe:
    shutil.copy(os.path.join(workdir, "metrics.jsonl"),
                os.path.join(ctx.out, "train_metrics.jsonl"))
  last_step = summary.get("step") or (steps[-1]["step"] if steps else 0)
  out.update({"config": f"configs/{name}.py", "image_size": config.image_size,
         "batch": config.batch_size, "dtype": json.load(open(os.path.join(workdir,
                                                                          "config.json")))["dtype"],
         "workers": config.data.workers, "step_cap": config.num_epochs * config.steps_per_epoch,
         "steps": last_step, "stopped_by": "time budget (SIGTERM)" if summary.get("preempted")
         else "step cap", "train_wall_s": train_s, "time_limit_s": seconds,
         "data": {k: len(os.listdir(v)) for k, v in folders.items()}})
  data_rec = next((r for r in records if r.get("type") == "data"), {})
  out["train_images"], out["val_images"] = data_rec.get("train_images"), data_rec.get("val_images")
  if steps:
    rates = [r["img_per_s"] for r in steps[1:] if r.get("img_per_s")]
    out["img_per_s_median"] = float(np.median(rates)) if rates else None
    out["losses_first"] = {k: steps[0].get(k) for k in ("d_loss", "g_adv", "g_l1")}
    out["losses_last"] = {k: steps[-1].get(k) for k in ("d_loss", "g_adv", "g_l1")}
    pick = np.unique(np.linspace(0, len(steps) - 1, min(len(steps), 8)).round().astype(int))
    out["losses"] = [{k: steps[i].get(k) for k in ("step", "d_loss", "g_adv", "g_l1",
                                                   "img_per_s")} for i in pick]
  out["epochs"] = [{k: e.get(k) for k in ("epoch", "step", "train_l1", "val_loss",
                                          "epoch_time_s")} for e in epochs]
  mngr = checkpoints.manager(workdir, read_only=True)
  ckpt_dir = os.path.join(workdir, "checkpoints")
  out["checkpoints"] = {"steps": sorted(mngr.all_steps()), "best": checkpoints.best_step(mngr),
                        "mib": round(_du(ckpt_dir) / 2**20, 1)}
  mngr.close()
  t = time.perf_counter()
  report = evaluate.evaluate_run(workdir,
                                 eval_dirs=[folders["test/cartoon"], folders["test/movie"]])
  out["eval_s"], out["eval_step"] = time.perf_counter() - t, report["step"]
  out["eval"] = report["domains"]
  if recipe:
    shutil.copy(os.path.join(workdir, "eval_per_image.csv"), ctx.out)
  t = time.perf_counter()
  colorizer = inference.load(workdir)
  out["samples_file"] = "samples.jpg" if recipe else f"samples_{name}.jpg"
  out["samples"] = _samples(colorizer, folders, s["samples_per_domain"],
                            os.path.join(ctx.out, out["samples_file"]))
  out["samples_s"] = time.perf_counter() - t
  return out


def _du(path: str) -> int:
  return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)


def _samples(colorizer, folders: dict, per_domain: int, path: str) -> list[str]:
  """A grid, one row per test image: grey input | colorized | original; saved as JPEG."""
  import numpy as np
  from PIL import Image
  from colorjax.data import sources
  files = [p for key in ("test/cartoon", "test/movie")
           for p in sources.list_images(folders[key])[:per_domain]]
  originals = [np.asarray(Image.open(p).convert("RGB")) for p in files]
  grey = [np.asarray(Image.fromarray(o).convert("L").convert("RGB")) for o in originals]
  colored = colorizer.many(grey, batch_size=len(grey))
  h = 192
  rows = []
  for g, c, o in zip(grey, colored, originals):
    w = round(o.shape[1] * h / o.shape[0])
    rows.append(np.concatenate([np.asarray(Image.fromarray(x[..., :3]).resize((w, h)))
                                for x in (g, c, o)], axis=1))
  width = max(r.shape[1] for r in rows)
  grid = np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows])
  Image.fromarray(grid).save(path, quality=88)
  return [os.path.relpath(p, os.path.dirname(os.path.dirname(folders["test/cartoon"])))
          for p in files]


RUNNERS = {"env": section_env, "step_bfloat16": lambda c: section_step(c, "bfloat16"),
           "step_float32": lambda c: section_step(c, "float32"), "tests": section_tests,
           "overfit": section_overfit, "metrics": section_metrics,
           "pipeline": section_pipeline, "train": section_train,
           "vivid": lambda c: section_train(c, "vivid")}


def min_budget(name: str, dry: bool) -> float:
  return MIN_BUDGET.get(name, (15, 10))[1 if dry else 0]


def section_budget(name: str, pending: list[str], deadline: float, dry: bool) -> float:
  """This section's seconds: its cap, less what the later sections need at least."""
  later = sum(min_budget(p, dry) for p in pending if p != name)
  return min(BUDGET[name][1 if dry else 0], deadline - time.time() - later)


def worker(args) -> None:
  """Runs the sections in order, each result to WORK/state/NAME.json (start in NAME.start)."""
  sys.path[:0] = [ROOT, HERE]
  if args.dry_run:
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
  from colorjax import xla_flags
  xla_flags.apply()
  state_dir = os.path.join(args.work, "state")
  ctx = Ctx(args, args.work, args.deadline)
  results_path = os.path.join(state_dir, "shared.json")
  if os.path.exists(results_path):            # peak and step rate from an earlier worker
    ctx.results = json.load(open(results_path))
  names = args.sections.split(",")
  for i, name in enumerate(names):
    ctx.budget = section_budget(name, names[i:], args.deadline, args.dry_run)
    if ctx.budget < min_budget(name, args.dry_run):
      _write(os.path.join(state_dir, f"{name}.json"),
             {"status": "skipped", "error": f"{ctx.budget:.0f} s left for it"})
      continue
    _write(os.path.join(state_dir, f"{name}.start"), {"t": time.time(), "budget": ctx.budget})
    print(f"\n=== {name} (budget {ctx.budget:.0f} s)", flush=True)
    t, ctx.partial = time.perf_counter(), {}
    try:
      record = {"status": "ok", "result": RUNNERS[name](ctx)}
    except BaseException as e:           # recorded with what it measured; the next one runs
      traceback.print_exc()
      record = {"status": "failed", "error": f"{type(e).__name__}: {str(e)[:800]}",
                "result": ctx.partial or None}
    record.update(seconds=time.perf_counter() - t, budget_s=ctx.budget)
    _write(os.path.join(state_dir, f"{name}.json"), record)
    _write(results_path, ctx.results)
    print(f"=== {name}: {record['status']} in {record['seconds']:.1f} s", flush=True)


def _write(path: str, obj) -> None:
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(obj, f, indent=1, default=_jsonable)
  os.replace(tmp, path)


def _jsonable(x):
  try:
    return float(x)
  except (TypeError, ValueError):
    return str(x)


# ----------------------------------------------------------------------------------------------
# Parent: runs workers, enforces budgets, writes the report


def run_sections(args, work: str, deadline: float, log, on_update) -> dict:
  """Runs the sections in worker processes; returns {name: record}. A section over its budget
  (plus GRACE_S) is killed with its worker, and a new worker runs the sections after it."""
  state_dir = os.path.join(work, "state")
  os.makedirs(state_dir, exist_ok=True)
  pending = [s for s in SECTIONS if s in args.sections.split(",")]
  records = {}
  while pending and time.time() < deadline:
    cmd = [sys.executable, "-u", os.path.abspath(__file__), args.out_dir, "--_worker",
           "--work", work, "--deadline", str(deadline), "--sections", ",".join(pending)]
    cmd += ["--dry-run"] * args.dry_run + (["--data", os.path.abspath(args.data)] if args.data
                                           else [])
    env = {**os.environ, "PYTHONPATH": _pythonpath(), "PYTHONUNBUFFERED": "1"}
    if args.dry_run:      # the tiny programs recur across sections (init, the f32 step)
      env.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(work, "xla_cache"))
      env.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    pump = threading.Thread(target=_pump, args=(proc.stdout, log), daemon=True)
    pump.start()
    killed, before = None, len(records)
    while True:
      running = proc.poll() is None
      for name in list(pending):       # collect finished sections in order
        path = os.path.join(state_dir, f"{name}.json")
        if not os.path.exists(path):
          break
        records[name] = json.load(open(path))
        pending.remove(name)
        on_update(records)
      if not running:
        break
      current = _current(state_dir, pending)
      if current:
        start = json.load(open(os.path.join(state_dir, f"{current}.start")))
        if time.time() > start["t"] + start["budget"] + GRACE_S:
          killed = current
          with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
          proc.wait()
      time.sleep(0.5)
    pump.join(timeout=5)
    current = _current(state_dir, pending)
    if current:                         # killed, or the worker died, inside this section
      start = json.load(open(os.path.join(state_dir, f"{current}.start")))
      why = (f"over its {start['budget']:.0f} s budget (+{GRACE_S} s): killed"
             if current == killed else f"the worker died in it (exit code {proc.returncode})")
      records[current] = {"status": "timeout" if current == killed else "crashed",
                          "error": why, "seconds": time.time() - start["t"],
                          "budget_s": start["budget"]}
      pending.remove(current)
      on_update(records)
    elif len(records) == before:        # no progress: the worker cannot start
      for name in pending:
        records[name] = {"status": "failed", "error": f"the worker exited with code "
                         f"{proc.returncode} before this section (see device_check.log)"}
      pending = []
  for name in pending:
    records[name] = {"status": "skipped", "error": "no time left"}
  return records


def _current(state_dir: str, pending: list[str]) -> str | None:
  for name in pending:
    if (os.path.exists(os.path.join(state_dir, f"{name}.start"))
        and not os.path.exists(os.path.join(state_dir, f"{name}.json"))):
      return name
  return None


def _pump(stream, log) -> None:
  for line in stream:
    sys.stdout.write(line)
    log.write(line)
    log.flush()


def goals(records: dict, baseline: dict | None = None) -> list[dict]:
  """The issues' goals, each with the measured value and whether it is met (None: not run).
  `baseline`: an earlier check's train record, the recipe for vivid when train did not run."""
  r = {k: v.get("result") or {} for k, v in records.items()}
  bf = r.get("step_bfloat16", {})
  pipe = r.get("pipeline", {})
  met = lambda v, ok: None if v is None else bool(ok(v))
  rows = [("model FLOP utilisation, bfloat16, batch 64, 256 px", bf.get("mfu"), "≥ 35%",
           lambda v: v >= MFU_GOAL, lambda v: f"{100 * v:.1f}%"),
          ("input pipeline img/s ÷ bfloat16 step img/s", pipe.get("pipeline_over_step"), "≥ 1",
           lambda v: v >= 1, lambda v: f"{v:.2f}"),
          ("ΔE00 throughput", r.get("metrics", {}).get("delta_e_mpx_per_s"), "> 1000 Mpx/s",
           lambda v: v > DELTA_E_GOAL_MPX, lambda v: f"{v:.0f} Mpx/s"),
          ("tiny model overfits in bfloat16 (L1 last/first)", r.get("overfit", {}).get("factor"),
           "< 0.5", lambda v: v < 0.5, lambda v: f"{v:.3f}"),
          ("device tests pass", r.get("tests", {}).get("passed"), "all",
           lambda v: records["tests"]["status"] == "ok", lambda v: f"{v} passed")]
  recipe = records.get("train") if "train" in records else baseline
  for domain in ("cartoon", "movie"):
    rows.append((f"vivid vs recipe, {domain} test folder: colourfulness ÷ truth's, ΔE00 vs "
                 "the recipe", vivid_vs_recipe(recipe, records.get("vivid"), domain),
                 f"≥ {VIVID_COLOUR:.0%}, ≤ +{VIVID_DELTA_E:.0%}",
                 lambda v: v["colourfulness"] >= VIVID_COLOUR and v["delta_e"] <= VIVID_DELTA_E,
                 lambda v: f"{v['colourfulness']:.0%} of the truth's, ΔE00 {v['delta_e']:+.1%}"))
  return [{"goal": g, "value": v, "shown": None if v is None else fmt(v), "target": t,
           "met": met(v, ok)} for g, v, t, ok, fmt in rows]


def vivid_vs_recipe(recipe: dict | None, vivid: dict | None, domain: str) -> dict | None:
  """Issue 16's two ratios on one test folder, from two finished training sections' eval."""
  evals = [((rec or {}).get("result") or {}).get("eval", {}).get(domain)
           for rec in (recipe, vivid)]
  if not all(evals) or any(rec.get("status") != "ok" for rec in (recipe, vivid)):
    return None
  (base, viv) = evals
  return {"colourfulness": viv["colorfulness_pred"] / viv["colorfulness_true"],
          "delta_e": viv["delta_e"] / base["delta_e"] - 1.0}


def load_baseline(path: str) -> dict | None:
  """The train record of an earlier check's report.json (--baseline); ValueError if none."""
  if not path:
    return None
  try:
    with open(path) as f:
      record = json.load(f)["sections"]["train"]
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise ValueError(f"--baseline={path}: not a device check report.json with a train "
                     f"section ({type(e).__name__}: {e})") from None
  if record.get("status") != "ok":
    raise ValueError(f"--baseline={path}: its train section did not finish "
                     f"({record.get('status')})")
  return record


def write_report(out_dir: str, report: dict) -> None:
  _write(os.path.join(out_dir, "report.json"), report)
  tmp = os.path.join(out_dir, "report.md.tmp")
  with open(tmp, "w") as f:
    f.write(markdown(report))
  os.replace(tmp, os.path.join(out_dir, "report.md"))


def markdown(report: dict) -> str:
  recs = report["sections"]
  env = (recs.get("env") or {}).get("result") or {}
  lines = [f"# colorjax device check{' (dry run, CPU, tiny sizes)' if report['dry_run'] else ''}",
           "", f"{report['started']}; {env.get('device_count', '?')} × "
           f"{env.get('device_kind', '?')}"
           f" ({env.get('platform', '?')}); {report['wall_s']:.0f} s of a {report['budget_s']:.0f}"
           " s budget.", "", "| section | status | seconds | budget s |", "|---|---|---|---|"]
  for name in SECTIONS:
    if name in recs:
      r = recs[name]
      lines.append(f"| {TITLES[name]} | {r['status']} | {r.get('seconds', 0):.1f} | "
                   f"{r.get('budget_s', 0):.0f} |")
  lines += ["", "## Goals", "", "| goal | measured | target | met |", "|---|---|---|---|"]
  for g in report["goals"]:
    met = {True: "yes", False: "**no**", None: "not measured"}[g["met"]]
    lines.append(f"| {g['goal']} | {g['shown'] or '—'} | {g['target']} | {met} |")
  for name in SECTIONS:
    if name not in recs:
      continue
    r = recs[name]
    lines += ["", f"## {TITLES[name]}", ""]
    if r.get("error"):
      lines += [f"**{r['status']}**: `{r['error']}`", ""]
    res = r.get("result")
    if res:
      try:
        lines += DETAILS.get(name, _plain)(res)
      except (KeyError, TypeError, ValueError):     # a partial result: its plain values
        lines += _plain(res)
  return "\n".join(lines) + "\n"


def _fmt(v) -> str:
  if isinstance(v, float):
    return f"{v:.4g}"
  return str(v)


def _plain(res: dict) -> list[str]:
  return [f"- {k}: {_fmt(v)}" for k, v in res.items() if not isinstance(v, (dict, list))]


def _env_md(res: dict) -> list[str]:
  lines = _plain(res)
  lines += [f"- {k}: {v}" for k, v in (res.get("versions") or {}).items()]
  if res.get("cuda"):
    lines.append(f"- CUDA/cuDNN (jax): {res['cuda']}")
  return lines


def _step_md(res: dict) -> list[str]:
  lines = [f"Batch {res['batch']}, {res['size']} px, {res['dtype']}, G {res['encoder']}-UNet: "
           f"**{res['img_per_s']:.1f} img/s** ({1e3 * res['step_s']:.1f} ms/step, median of "
           f"{res['steps']}), **{_fmt(res['tflop_per_s'])} TFLOP/s** "
           f"({_fmt(res['gflop_per_step'])} GFLOP/step; XLA's count "
           f"{_fmt(res['gflop_per_step_xla'])}, "
           f"as traced {_fmt(res['gflop_per_step_traced'])}), bfloat16 matmul peak "
           f"{_fmt(res['peak_bf16_tflop_per_s'])} TFLOP/s ({res['peak_n']}³), "
           f"**MFU {100 * res['mfu']:.1f}%**; compile {res['compile_s']:.1f} s; "
           f"losses finite: {res['losses_finite']}."]
  if res.get("peak_memory_gib"):
    lines[-1] += f" Peak device memory {res['peak_memory_gib']} GiB."
  prof = res.get("profile")
  if prof:
    lines += ["", "Device time by kind of op (MFU under 35%):", "", "| kind | ms/step | share |",
              "|---|---|---|"]
    lines += [f"| {k} | {ms:.2f} | {100 * prof['share_by_kind'][k]:.1f}% |"
              for k, ms in prof["ms_per_step_by_kind"].items()]
    lines += ["", "Costliest operations:", "", "| op | kind | ms/step |", "|---|---|---|"]
    lines += [f"| `{o['op'][:60]}` | {o['kind']} | {o['ms']:.2f} |" for o in prof["top_ops"]]
  return lines


def _tests_md(res: dict) -> list[str]:
  lines = [f"`{res['command']}`: {res.get('passed', '?')} passed, {res.get('failures', '?')} "
           f"failed, {res.get('errors', '?')} errors, {res.get('skipped', '?')} skipped in "
           f"{res['seconds']:.1f} s."]
  return lines + [f"- FAILED {f}" for f in res.get("failed", [])]


def _pipeline_md(res: dict) -> list[str]:
  lines = [f"{res['images']} JPEGs (e.g. {res['example_size'][0]}×{res['example_size'][1]}), "
           f"{res['size']} px crops, batch {res['batch']}, {res['batches']} timed batches, "
           f"{res['cpus']} CPUs.", "", "| workers | img/s | first batch s |", "|---|---|---|"]
  lines += [f"| {r['workers']} | {r['img_per_s']:.1f} | {r['first_batch_s']:.2f} |"
            for r in res["rows"]]
  if res.get("step_img_per_s"):
    lines += ["", f"bfloat16 step: {res['step_img_per_s']:.1f} img/s; pipeline ÷ step = "
              f"{res['pipeline_over_step']:.2f}."]
  return lines


def _metrics_md(res: dict) -> list[str]:
  return [f"ΔE00 (jit, float32) on {res['delta_e_pixels']:,} Lab pairs: "
          f"**{res['delta_e_mpx_per_s']:.1f} Mpx/s**; SSIM on {res['ssim_batch']} "
          f"{res['ssim_size']}×{res['ssim_size']}×3 images: "
          f"**{res['ssim_img_per_s']:.1f} img/s** "
          f"(median of {res['repeats']})."]


def _train_md(res: dict) -> list[str]:
  lines = [f"{res['config']} at {res['image_size']} px, batch {res['batch']}, {res['dtype']}, "
           f"{res['workers']} data workers; {res.get('train_images')} training and "
           f"{res.get('val_images')} validation images ({res['data']}). "
           f"**{res['steps']} steps** in {res['train_wall_s']:.0f} s (compile and checkpoints "
           f"included; stopped by the {res['stopped_by']}; cap {res['step_cap']} steps, "
           f"{res['time_limit_s']:.0f} s), median {_fmt(res.get('img_per_s_median'))} img/s.",
           "", "| step | d_loss | g_adv | g_l1 | img/s |", "|---|---|---|---|---|"]
  lines += [f"| {r['step']} | {_fmt(r.get('d_loss'))} | {_fmt(r.get('g_adv'))} | "
            f"{_fmt(r.get('g_l1'))} | {_fmt(r.get('img_per_s'))} |" for r in res.get("losses", [])]
  if res.get("epochs"):
    lines += ["", "| epoch | step | train L1 | val loss | epoch s |", "|---|---|---|---|---|"]
    lines += [f"| {e['epoch']} | {e['step']} | {_fmt(e['train_l1'])} | {_fmt(e['val_loss'])} | "
              f"{_fmt(e['epoch_time_s'])} |" for e in res["epochs"]]
  ck = res["checkpoints"]
  lines += ["", f"Checkpoints at steps {ck['steps']} (best {ck['best']}), {ck['mib']} MiB; "
            f"evaluated step {res['eval_step']} in {res['eval_s']:.1f} s on the held-out folders:",
            "", "| test folder | images | ΔE00 | SSIM | PSNR dB | colourfulness (truth) |",
            "|---|---|---|---|---|---|"]
  lines += [f"| {d} | {m['n']} | {m['delta_e']:.2f} | {m['ssim']:.4f} | {m['psnr']:.2f} | "
            f"{m['colorfulness_pred']:.1f} ({m['colorfulness_true']:.1f}) |"
            for d, m in res["eval"].items()]
  lines += ["", f"{res.get('samples_file', 'samples.jpg')} (grey | colorized | original, "
            f"{res['samples_s']:.1f} s with the "
            f"load): {', '.join(res['samples'])}"]
  return lines


DETAILS = {"env": _env_md, "step_bfloat16": _step_md, "step_float32": _step_md,
           "tests": _tests_md, "pipeline": _pipeline_md, "metrics": _metrics_md,
           "train": _train_md, "vivid": _train_md}


def summary_table(report: dict) -> str:
  rows = [f"{TITLES[n]:48s} {r['status']:8s} {r.get('seconds', 0):7.1f} s"
          for n, r in report["sections"].items()]
  rows += [f"goal: {g['goal']}: {g['shown'] or '—'} (target {g['target']}; met: {g['met']})"
           for g in report["goals"]]
  return "\n".join(rows)


def parse_args(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("out_dir", nargs="?", help="folder for report.md, report.json and the rest")
  p.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU (what CI runs)")
  p.add_argument("--data", default="", help="train/ and test/ JPEG folders "
                 "(benchmarks/device_prepare.sh); the dry run makes synthetic ones without it")
  p.add_argument("--budget", type=float, default=0, help="seconds for the whole check "
                 "(default 450; dry run 1800)")
  p.add_argument("--sections", default=",".join(ORDER),
                 help=f"subset of {','.join(SECTIONS)} (default: all but {','.join(OPTIONAL)})")
  p.add_argument("--baseline", default="", help="report.json of an earlier check whose train "
                 "section is the recipe that vivid is compared with, when this check does not "
                 "run train")
  p.add_argument("--work", default="", help="scratch folder (default: a temporary one)")
  p.add_argument("--prepare", metavar="DST", help="only write the device's data folders to DST "
                 "from --source (see prepare_data)")
  p.add_argument("--source", default=SHARED, help="with --prepare: the shared data folder")
  p.add_argument("--_worker", action="store_true", help=argparse.SUPPRESS)
  p.add_argument("--deadline", type=float, default=0, help=argparse.SUPPRESS)
  args = p.parse_args(argv)
  if not args.out_dir and not args.prepare:
    p.error("OUT_DIR is required (or --prepare DST)")
  unknown = set(args.sections.split(",")) - set(SECTIONS)
  if unknown:
    p.error(f"--sections: unknown {', '.join(sorted(unknown))}; choose from "
            f"{', '.join(SECTIONS)}")
  try:
    args.baseline_record = load_baseline(args.baseline)
  except ValueError as e:
    p.error(str(e))
  return args


def main(argv=None) -> int:
  args = parse_args(argv)
  if args.prepare:
    print(json.dumps(prepare_data(args.prepare, args.source)))
    return 0
  if args._worker:
    worker(args)
    return 0
  t0, started = time.time(), datetime.datetime.now(datetime.timezone.utc)
  budget = args.budget or (1800 if args.dry_run else 450)
  os.makedirs(args.out_dir, exist_ok=True)
  for name in OUT_FILES:          # a rerun into the same folder: nothing stale
    with contextlib.suppress(FileNotFoundError):
      os.remove(os.path.join(args.out_dir, name))
  work = args.work or tempfile.mkdtemp(prefix="colorjax-device-check-")
  os.makedirs(work, exist_ok=True)
  shutil.rmtree(os.path.join(work, "state"), ignore_errors=True)

  def report_of(records: dict) -> dict:
    report = {"dry_run": args.dry_run, "started": started.isoformat(timespec="seconds"),
              "wall_s": time.time() - t0, "budget_s": budget, "command": sys.argv,
              "sections": {n: records[n] for n in SECTIONS if n in records}}
    report["goals"] = goals(report["sections"], args.baseline_record)
    write_report(args.out_dir, report)     # after every section: a killed run keeps its part
    return report

  with open(os.path.join(args.out_dir, "device_check.log"), "w") as log:
    report = report_of(run_sections(args, work, t0 + budget, log, report_of))
  if not args.work:
    shutil.rmtree(work, ignore_errors=True)
  print("\n" + summary_table(report))
  print(f"wrote {os.path.join(args.out_dir, 'report.md')} ({report['wall_s']:.0f} s)")
  return 0


if __name__ == "__main__":
  sys.exit(main())
