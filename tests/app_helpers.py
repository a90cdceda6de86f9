"""Helpers shared by the app tests: a tiny study directory, grey test images."""
from __future__ import annotations

import os

import numpy as np

STEPS = {"cartoon": 3, "movie": 4, "mixed": 5}


def make_study(root: str) -> str:
  """A study directory whose cartoon/ movie/ mixed/ runs hold one tiny random checkpoint each
  (different seeds and steps, so the answers of the three models differ)."""
  from conftest import save_random_run
  for i, (name, step) in enumerate(STEPS.items()):
    save_random_run(os.path.join(root, name), step=step, seed=i)
  return root


def grey_image(h: int, w: int, seed: int) -> np.ndarray:
  """A grey uint8 [h, w] image with structure that differs per seed."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w], np.float64)[:, None, None]
  f1, f2, phase = rng.uniform(1, 4), rng.uniform(1, 4), rng.uniform(0, 6.3)
  v = 0.5 + 0.35 * np.sin(f1 * 6.28 * xx + phase) * np.cos(f2 * 6.28 * yy)
  return np.round(v * 255).astype(np.uint8)
