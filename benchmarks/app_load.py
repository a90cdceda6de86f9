"""The web app under load: N concurrent colorize requests through a real uvicorn server.

  .venv/bin/python benchmarks/app_load.py                          # demo-config study, 20 requests
  .venv/bin/python benchmarks/app_load.py --workdir=runs/study --requests=40 --size=768x512

Without --workdir, a study directory (cartoon/ movie/ mixed/) of the chosen config with random
weights is written to a temp dir (speed does not depend on the weights' values). The server is
`colorjax.app.create_app` under uvicorn on a free loopback port; an httpx client sends all
requests at once, each with its own synthetic grey PNG, model (cycling) and saturation. Before
timing, one request per model compiles its bucket shape. Checked: every request completes with
200 and its answer equals `Colorizer(image)` for ITS input, model and saturation (none lost,
none mixed up). Reported: wall time for the burst, per-request latency (p50/p95/max), device
time (sum of model calls), the deepest queue, and the same work called directly, one by one.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
import tempfile
import time

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
from colorjax import xla_flags  # noqa: E402

xla_flags.apply()             # as launch.py does, before JAX starts


def grey_png(h: int, w: int, seed: int) -> tuple[np.ndarray, bytes]:
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w], np.float32)[:, None, None]
  f = rng.uniform(1, 5, 3)
  v = 0.5 + 0.3 * np.sin(f[0] * 6.3 * xx) * np.cos(f[1] * 6.3 * yy) + 0.1 * np.sin(f[2] * 20 * xx * yy)
  a = np.uint8(np.clip(v, 0, 1) * 255)
  buf = io.BytesIO()
  Image.fromarray(a).save(buf, format="PNG")
  return a, buf.getvalue()


async def burst(url: str, jobs) -> tuple[list, list[float], float]:
  import httpx

  async def one(c, body, model, sat):
    t = time.perf_counter()
    r = await c.post("/api/colorize", params={"model": model, "saturation": f"{sat:.2f}"},
                     content=body)
    return r, time.perf_counter() - t

  async with httpx.AsyncClient(base_url=url, timeout=3600,
                               limits=httpx.Limits(max_connections=len(jobs))) as c:
    t0 = time.perf_counter()
    out = await asyncio.gather(*[one(c, body, m, s) for _, body, m, s in jobs])
    wall = time.perf_counter() - t0
  return [r for r, _ in out], [t for _, t in out], wall


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default=os.path.join(ROOT, "configs", "demo.py"))
  parser.add_argument("--workdir", help="a run or study directory (default: random-weight study)")
  parser.add_argument("--requests", type=int, default=20)
  parser.add_argument("--size", default="384x256", help="WxH of each request's image")
  args = parser.parse_args()
  from colorize import load_config, random_checkpoint
  from colorjax import app, study

  w, h = (int(v) for v in args.size.split("x"))
  with tempfile.TemporaryDirectory() as tmp:
    workdir = args.workdir
    if workdir is None:
      workdir = tmp
      config = load_config(args.config)
      for name in study.MODELS:
        random_checkpoint(config, os.path.join(tmp, name))
    models = app.load_models(workdir)
    names = list(models)
    jobs = []
    for i in range(args.requests):
      grey, body = grey_png(h, w, seed=i)
      jobs.append((grey, body, names[i % len(names)], round(0.5 + 0.05 * i, 2)))
    api = app.create_app(models)
    with app.running(api) as url:
      asyncio.run(burst(url, [jobs[i] for i in range(len(names))]))     # compile each model
      api.state.device.peak = 0
      answers, latency, wall = asyncio.run(burst(url, jobs))
      peak = api.state.device.peak
    device = sum(float(r.headers.get("x-seconds", "nan")) for r in answers)
    ok = sum(r.status_code == 200 for r in answers)
    t0 = time.perf_counter()
    expected = [models[m].colorizer(g, saturation=s) for g, _, m, s in jobs]
    direct = time.perf_counter() - t0
    mixed_up = sum(r.status_code != 200 or r.headers["x-model"] != m or
                   not np.array_equal(np.asarray(Image.open(io.BytesIO(r.content))), e)
                   for r, e, (_, _, m, _) in zip(answers, expected, jobs))
  lat = np.sort(latency)
  listing = ", ".join(f"{n} (step {models[n].info.get('step')})" for n in names)
  print(f"models: {listing}; "
        f"config {models[names[0]].info.get('config')}; {args.requests} requests of {w}x{h} px")
  print(f"completed 200: {ok}/{args.requests}   wrong or mixed-up answers: {mixed_up}   "
        f"deepest queue: {peak}")
  print(f"burst wall time: {wall:.2f} s   latency p50 {np.percentile(lat, 50):.2f} s  "
        f"p95 {np.percentile(lat, 95):.2f} s  max {lat[-1]:.2f} s")
  print(f"device time (sum of model calls): {device:.2f} s   same calls directly, one by one: "
        f"{direct:.2f} s   burst / direct: {wall / direct:.2f}x")
  if ok != args.requests or mixed_up:
    sys.exit(1)


if __name__ == "__main__":
  main()
