"""Frame-to-frame stability without training: optical flow, occlusion, shot cuts, colour carried.

Everything here is NumPy/OpenCV on lightness maps (no model, no files):

* `flow` — OpenCV's DIS optical flow between two grey frames; `visible` — the forward-backward
  consistency check (Sundaram et al. 2010 / Ruder et al. 2016) that marks occluded pixels.
* `CutDetector` — shot cuts, streaming: the motion-compensated luma difference between a frame
  and the previous one, compared with that of its neighbours (PySceneDetect's "adaptive"
  idea): a cut is a change much larger than the changes around it, so fast motion, a car
  filling the frame for a few frames, or an overlay that flickers for a second are not cuts.
* `Stabilizer` — carries each frame's colour (a*b* at the model's bucket size) to the next frame
  along the flow and blends it with that frame's own prediction, weighted by a confidence
  (visible in both directions and the same lightness after warping); nothing crosses a cut.
* `sequence_flows` — backward flows and visibility masks of a sequence, the inputs of
  `colorjax.metrics.warp_error`.
"""
from __future__ import annotations

import collections

import numpy as np

try:
  import cv2
except ImportError:      # the `video` extra; colorjax without it still colours images
  cv2 = None

ANALYSIS_WIDTH = 128     # px; cut detection works on frames this wide (cheap, size-independent)
CUT_WINDOW = 2           # frames each side a candidate cut is compared with (the decision lag)
CUT_RATIO = 6.0          # a cut's difference is this many times its neighbours' mean ...
CUT_MIN = 15.0           # ... and at least this (mean |ΔL| in 0-255 grey levels after motion)
CUT_SPREAD = 0.6         # ... over most of the frame: this fraction of an 8×8 grid of cells
CELL_CHANGED = 12.0      #     changed by more than this (a jumping object is not a cut)
PHOTO_SIGMA = 30.0       # grey levels: confidence exp(-(ΔL/σ)²) for the lightness mismatch after
                         # warping; σ 8 → 30 cut the added warping error of a Tears of Steel shot
                         # 0.030 → 0.021 (×1e3) at strength 0.8, ΔE00 unchanged

DEFAULT_STRENGTH = 0.9   # --temporal default: the strongest of 0.8/0.9/0.95 that kept every clip's
                         # ΔE00 within 2% of per-frame in benchmarks/video.py (0.95: +3.1% on one)


def grey8(lightness: np.ndarray) -> np.ndarray:
  """L* [H, W] in [0, 100] → uint8 grey [H, W] (0-255), the input of the flow."""
  return np.clip(lightness * 2.55 + 0.5, 0, 255).astype(np.uint8)


def _dis(preset: str):
  if cv2 is None:
    raise ModuleNotFoundError("video needs OpenCV: pip install 'colorjax[video]' "
                              "(opencv-python-headless)")
  return cv2.DISOpticalFlow_create(getattr(cv2, f"DISOPTICAL_FLOW_PRESET_{preset}"))


def flow(src: np.ndarray, dst: np.ndarray, dis=None) -> np.ndarray:
  """DIS optical flow [H, W, 2] (dx, dy px, float32) with src(x) ≈ dst(x + flow(x)).

  `src`, `dst`: uint8 grey [H, W]. Pass `dis` (a cv2.DISOpticalFlow) to reuse one.
  """
  dis = dis or _dis("MEDIUM")
  return dis.calc(np.ascontiguousarray(src), np.ascontiguousarray(dst), None)


def remap(image: np.ndarray, flow_px: np.ndarray) -> np.ndarray:
  """out(x) = image(x + flow(x)), bilinear, edges replicated. image [H, W] or [H, W, C]."""
  h, w = flow_px.shape[:2]
  gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
  return cv2.remap(image, gx + flow_px[..., 0], gy + flow_px[..., 1], cv2.INTER_LINEAR,
                   borderMode=cv2.BORDER_REPLICATE)


def visible(bw: np.ndarray, fw: np.ndarray) -> np.ndarray:
  """Forward-backward check: bool [H, W], True where pixel x of frame B is seen in frame A.

  `bw`: flow B → A (B(x) ≈ A(x + bw(x))); `fw`: flow A → B. Following x to A and back must
  return to x: |bw + fw(x + bw)|² ≤ 0.01 (|bw|² + |fw(x + bw)|²) + 0.5 (Ruder et al. 2016).
  Pixels whose match falls outside A are not visible.
  """
  back = remap(fw, bw)
  total = bw + back
  ok = (total ** 2).sum(-1) <= 0.01 * ((bw ** 2).sum(-1) + (back ** 2).sum(-1)) + 0.5
  h, w = bw.shape[:2]
  gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
  x, y = gx + bw[..., 0], gy + bw[..., 1]
  return ok & (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)


def sequence_flows(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Backward flows [T-1, H, W, 2] (frame t+1 → t) and visibility [T-1, H, W] (float32 0/1)
  of uint8 grey frames [T, H, W]: the inputs of `metrics.warp_error`."""
  dis = _dis("MEDIUM")
  flows, masks = [], []
  for a, b in zip(grey[:-1], grey[1:]):
    bw, fw = flow(b, a, dis), flow(a, b, dis)
    flows.append(bw)
    masks.append(visible(bw, fw).astype(np.float32))
  return np.stack(flows), np.stack(masks)


class CutDetector:
  """Streaming shot-cut detector. Feed every frame's L* with `push`; it answers, with a lag
  of CUT_WINDOW frames, which frames start a new shot. `finish` answers the rest.

  score(t) = mean |grey_t − warp(grey_{t−1})| at ANALYSIS_WIDTH (motion compensated with DIS);
  frame t is a cut when score(t) ≥ CUT_MIN, score(t) ≥ CUT_RATIO × the mean score of the
  CUT_WINDOW frames on each side, and the change covers most of the frame (≥ CUT_SPREAD of
  8×8 grid cells changed by > CELL_CHANGED). Frame 0 starts the first shot (not a cut).
  """

  def __init__(self, ratio: float = CUT_RATIO, minimum: float = CUT_MIN,
               window: int = CUT_WINDOW):
    self.ratio, self.minimum, self.window = ratio, minimum, window
    self._dis = _dis("FAST")
    self._prev: np.ndarray | None = None
    self._scores: collections.deque = collections.deque()   # (index, score), undecided + past
    self._count = 0
    self._decided = 0
    self.cuts: list[int] = []

  def _small(self, lightness: np.ndarray) -> np.ndarray:
    h, w = lightness.shape
    size = (ANALYSIS_WIDTH, max(8, round(h * ANALYSIS_WIDTH / w)))
    return cv2.resize(grey8(lightness), size, interpolation=cv2.INTER_AREA)

  def push(self, lightness: np.ndarray) -> list[tuple[int, bool]]:
    """Add the next frame's L* [H, W]; returns [(frame index, starts a new shot)] decided."""
    small = self._small(lightness)
    score = 0.0
    if self._prev is not None:
      f = flow(small, self._prev, self._dis)          # small(x) ≈ prev(x + f)
      diff = np.abs(remap(self._prev, f).astype(np.float32) - small)
      h, w = diff.shape
      cells = cv2.resize(diff, (8, 8), interpolation=cv2.INTER_AREA)
      if (cells > CELL_CHANGED).mean() >= CUT_SPREAD:
        score = float(diff.mean())
      else:                # a local change: scored, but never above CUT_MIN
        score = min(float(diff.mean()), CUT_MIN * 0.99)
    self._prev = small
    self._scores.append((self._count, score))
    self._count += 1
    return self._decide(final=False)

  def finish(self) -> list[tuple[int, bool]]:
    """Decisions for the frames still waiting for their right-hand neighbours."""
    return self._decide(final=True)

  def _decide(self, final: bool) -> list[tuple[int, bool]]:
    out = []
    while self._decided < self._count and (final or self._decided + self.window < self._count):
      t = self._decided
      scores = dict(self._scores)
      s = scores[t]
      around = [scores[j] for j in range(t - self.window, t + self.window + 1)
                if j != t and j >= 1 and j in scores]
      cut = t > 0 and s >= self.minimum and s >= self.ratio * max(
          float(np.mean(around)) if around else 0.0, 1.0)
      if cut:
        self.cuts.append(t)
      out.append((t, cut))
      self._decided += 1
      while self._scores and self._scores[0][0] < self._decided - self.window:
        self._scores.popleft()
    return out


class Stabilizer:
  """Carries colour along the flow within a shot (see the module docstring).

  `step(lightness, ab)` takes one frame's L* and predicted a*b* at the bucket size and returns
  the a*b* to render: ab + strength · c · (warp(previous output) − ab), with the confidence
  c = visible · exp(−(ΔL / PHOTO_SIGMA)²) in [0, 1]. strength 0 returns the prediction
  unchanged; `reset()` at every cut.
  """

  def __init__(self, strength: float = DEFAULT_STRENGTH):
    if not (0.0 <= strength <= 1.0):
      raise ValueError(f"temporal strength {strength}: must be in [0, 1]")
    self.strength = float(strength)
    self._dis = _dis("MEDIUM")
    self.reset()

  def reset(self) -> None:
    self._grey: np.ndarray | None = None
    self._ab: np.ndarray | None = None

  def step(self, lightness: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """L* [h, w] in [0, 100], a*b* [h, w, 2] (Lab units) → stabilised a*b* [h, w, 2] float32."""
    ab = np.asarray(ab, np.float32)
    if self.strength == 0.0:
      return ab
    grey = grey8(lightness)
    if self._grey is not None and self._grey.shape == grey.shape:
      bw = flow(grey, self._grey, self._dis)
      fw = flow(self._grey, grey, self._dis)
      carried = remap(self._ab, bw)
      mismatch = (remap(self._grey, bw).astype(np.float32) - grey) / PHOTO_SIGMA
      confidence = visible(bw, fw) * np.exp(-mismatch * mismatch)
      ab = ab + (self.strength * confidence)[..., None] * (carried - ab)
    self._grey, self._ab = grey, ab
    return ab
