"""metrics.warp_error (Lai et al. 2018) and metrics.cdc (Liu et al. 2021) against hand-computed
values; temporal.sequence_flows gives warp_error the flow of the input frames."""
import math

import numpy as np
import pytest

from colorjax import metrics


def _grey(rows):
  """[H, W] values → [H, W, 3] with the same value in each channel."""
  return np.repeat(np.asarray(rows, np.float32)[..., None], 3, axis=-1)


def test_warp_error_by_hand():
  f0 = _grey([[0.0, 0.2, 0.4], [0.6, 0.8, 1.0]])
  f1 = _grey([[0.1, 0.4, 0.4], [0.8, 0.8, 0.0]])
  f2 = _grey(np.full((2, 3), 0.5))
  frames = np.stack([f0, f1, f2])
  flows = np.zeros((2, 2, 3, 2), np.float32)
  flows[0, ..., 0] = 1.0      # f1(x) shows f0(x + 1): warped f0 = [[.2 .4 .4] [.8 1 1]]
  flows[1, ..., 0] = 0.5      # half-way: warped f1 = [[.25 .4 .4] [.8 .4 0]]
  visible = np.ones((2, 2, 3), np.float32)
  visible[0, :, 2] = 0        # the last column's match left the frame
  # pair 0: squared differences .01 + 0 + 0 + .04 over 4 visible pixels (x 3 channels)
  pair0 = 3 * (0.01 + 0.04) / (3 * 4)
  # pair 1: .25² + .1² + .1² + .3² + .1² + .5² over 6 pixels
  pair1 = (0.0625 + 0.01 + 0.01 + 0.09 + 0.01 + 0.25) / 6
  assert float(metrics.warp_error(frames, flows, visible)) == pytest.approx(
      (pair0 + pair1) / 2, abs=1e-6)
  none_visible = np.zeros_like(visible)
  assert float(metrics.warp_error(frames, flows, none_visible)) == 0.0


def _js_half():
  """JS divergence between 'all pixels at 0' and 'half at 0, half at 255' (natural log)."""
  m = (0.75, 0.25)
  kl_p = 1.0 * math.log(1.0 / m[0])
  kl_q = 0.5 * math.log(0.5 / m[0]) + 0.5 * math.log(0.5 / m[1])
  return 0.5 * kl_p + 0.5 * kl_q


def test_cdc_by_hand():
  black = np.zeros((4, 4, 3), np.uint8)
  half = black.copy()
  half[:2] = 255
  j = _js_half()
  assert j == pytest.approx(0.2157615543388357, abs=1e-12)
  assert float(metrics.cdc(np.stack([black, half]))) == pytest.approx(j, abs=1e-6)
  five = np.stack([black, half, black, half, black])       # d=1: j; d=2: 0; d=4: 0
  assert float(metrics.cdc(five)) == pytest.approx(j / 3, abs=1e-6)
  three = five[:3]                                          # d=4 does not fit: (j + 0) / 2
  assert float(metrics.cdc(three)) == pytest.approx(j / 2, abs=1e-6)
  # floats in [0, 1] are rounded to 8-bit codes first
  assert float(metrics.cdc(five.astype(np.float32) / 255)) == pytest.approx(j / 3, abs=1e-6)
  assert float(metrics.cdc(np.stack([black, black]))) == 0.0


def test_cdc_matches_scipy_on_random_frames():
  from scipy.spatial import distance
  rng = np.random.default_rng(0)
  frames = rng.integers(0, 256, size=(6, 16, 16, 3), dtype=np.uint8)
  hist = np.stack([[np.bincount(f[..., c].ravel(), minlength=256) / 256.0 for c in range(3)]
                   for f in frames])
  want = np.mean([np.mean([distance.jensenshannon(hist[t, c], hist[t + d, c]) ** 2
                           for t in range(6 - d) for c in range(3)]) for d in (1, 2, 4)])
  assert float(metrics.cdc(frames)) == pytest.approx(want, rel=1e-5)


def test_warp_error_of_a_panning_clip_is_small_with_its_own_flow():
  cv2 = pytest.importorskip("cv2")
  from colorjax import temporal
  rng = np.random.default_rng(0)
  base = cv2.GaussianBlur(rng.random((40, 100)).astype(np.float32), (0, 0), 2.5)
  base = (base - base.min()) / (base.max() - base.min())
  frames = np.stack([_grey(base[:, 3 * t:3 * t + 64]) for t in range(4)])
  flows, visible = temporal.sequence_flows((frames[..., 0] * 255).astype(np.uint8))
  assert flows.shape == (3, 40, 64, 2) and visible.shape == (3, 40, 64)
  assert visible.mean() > 0.8
  moved = float(metrics.warp_error(frames, flows, visible))
  still = float(metrics.warp_error(frames, np.zeros_like(flows), np.ones_like(visible)))
  assert moved < 0.1 * still
