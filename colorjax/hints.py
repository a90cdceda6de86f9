"""Colour hints: user points → hint maps, propagation, and simulated hints for training."""
from __future__ import annotations

import numpy as np


# --- Simulated hints for training (numpy only: runs in grain's data workers) ----------------

HINT_P = 1 / 8            # geometric parameter of the number of points
HINT_SIGMA = 0.25         # position σ as a fraction of the side
HINT_MAX_PATCH = 9        # patch sides are uniform on 1..HINT_MAX_PATCH px


def simulate_points(height: int, width: int, rng: np.random.Generator, p: float = HINT_P,
                    sigma: float = HINT_SIGMA, max_patch: int = HINT_MAX_PATCH) -> np.ndarray:
  """Random hint patches for one training crop, as int [n, 3] rows (top row, left column, side).

  The distribution (after Zhang et al. 2017, "Real-Time User-Guided Image Colorization"):
  - the number of points n is geometric on {0, 1, 2, ...} with P(n = k) = p (1 − p)^k, so with
    p = 1/8 the mean is (1 − p)/p = 7 and one crop in eight gets no hint at all (the model
    keeps working in automatic mode);
  - each patch centre is normal around the crop's centre ((h − 1)/2, (w − 1)/2) with σ = `sigma`
    × the side (h for rows, w for columns), rounded to a pixel and clipped into the crop;
  - each patch is a square of side s uniform on {1, ..., max_patch} px, centred there (top-left
    at centre − (s − 1)//2) and shifted to lie wholly inside the crop.
  Every draw comes from `rng`, so the hints of an example are fixed by the generator's state
  (in training: by the seed and the example's position in the data stream).
  """
  n = int(rng.geometric(p)) - 1            # numpy's geometric counts trials: {1, 2, ...}
  cy = np.clip(np.rint(rng.normal((height - 1) / 2, sigma * height, n)), 0, height - 1)
  cx = np.clip(np.rint(rng.normal((width - 1) / 2, sigma * width, n)), 0, width - 1)
  side = rng.integers(1, max_patch + 1, n)
  side = np.minimum(side, min(height, width))
  top = np.clip(cy.astype(np.int64) - (side - 1) // 2, 0, height - side)
  left = np.clip(cx.astype(np.int64) - (side - 1) // 2, 0, width - side)
  return np.stack([top, left, side], axis=1).astype(np.int64).reshape(-1, 3)


def hint_map_from_patches(ab: np.ndarray, patches: np.ndarray) -> np.ndarray:
  """The generator's hint input [h, w, 3] float32 for patches of the true `ab`.

  `ab` [h, w, 2] is the normalised true colour (a*/110, b*/110). Each patch (top, left, side)
  is filled with the mean true ab over the patch, mask 1; elsewhere (0, 0, 0). Where patches
  overlap, the later one wins.
  """
  h, w = ab.shape[:2]
  out = np.zeros((h, w, 3), np.float32)
  for top, left, side in np.asarray(patches, np.int64).reshape(-1, 3):
    window = (slice(top, top + side), slice(left, left + side))
    out[window + (slice(0, 2),)] = ab[window].reshape(-1, 2).mean(axis=0)
    out[window + (2,)] = 1.0
  return out


def simulate_hints(ab: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """Simulated user hints [h, w, 3] for a training crop with true normalised `ab` [h, w, 2]:
  `simulate_points`' distribution, each hint the mean true ab over its patch."""
  return hint_map_from_patches(ab, simulate_points(ab.shape[0], ab.shape[1], rng))
