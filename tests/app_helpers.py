"""Helpers shared by the app tests: a tiny study directory and a server on a loopback port."""
from __future__ import annotations

import contextlib
import os
import threading
import time

import numpy as np

from colorjax import checkpoints, config_lib, state

STEPS = {"cartoon": 3, "movie": 4, "mixed": 5}


def make_study(root: str) -> str:
  """A study directory whose cartoon/ movie/ mixed/ runs hold one tiny random checkpoint each
  (different seeds and steps, so the answers of the three models differ)."""
  from conftest import make_tiny_config
  for i, (name, step) in enumerate(STEPS.items()):
    config = config_lib.finalize(make_tiny_config(seed=i))
    mngr = checkpoints.manager(os.path.join(root, name))
    checkpoints.save(mngr, step, state.random_state(config), {}, config.to_json_best_effort(),
                     {checkpoints.VAL_METRIC: 1.0})
    mngr.close()
  return root


def grey_image(h: int, w: int, seed: int) -> np.ndarray:
  """A grey uint8 [h, w] image with structure that differs per seed."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w], np.float64)[:, None, None]
  f1, f2, phase = rng.uniform(1, 4), rng.uniform(1, 4), rng.uniform(0, 6.3)
  v = 0.5 + 0.35 * np.sin(f1 * 6.28 * xx + phase) * np.cos(f2 * 6.28 * yy)
  return np.round(v * 255).astype(np.uint8)


@contextlib.contextmanager
def uvicorn_server(api):
  """Serve `api` with a real uvicorn server in a thread on a free loopback port; yields the URL."""
  import uvicorn
  from colorjax import app
  sock = app.listen("127.0.0.1", 0)
  server = uvicorn.Server(uvicorn.Config(api, log_level="warning", access_log=False))
  thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
  thread.start()
  deadline = time.monotonic() + 30
  while not server.started:
    if time.monotonic() > deadline or not thread.is_alive():
      raise RuntimeError("uvicorn did not start")
    time.sleep(0.05)
  try:
    yield app.url_of(sock)
  finally:
    server.should_exit = True
    thread.join(30)
    sock.close()
