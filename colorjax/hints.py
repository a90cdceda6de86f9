"""Colour hints: user points → hint maps, propagation, and simulated hints for training.

A hint says "this pixel is this colour". Only its chroma (a*, b*) is used: the lightness
always stays the image's own L*.

  Hint = (x, y, colour)   x = column, y = row, in the INPUT image's pixel coordinates (pixel
                          centres at integers, so 0 <= x <= W − 1 ... any x in [−0.5, W − 0.5)
                          lies on a pixel); colour "#rrggbb" or (r, g, b) with 0..255 values.
  Scribble                an RGBA image of the input's size: every opaque pixel is a hint.

The colorizer works at a *render bucket* (h, w) — a resize of the whole image (see
colorjax.inference) — so hints are mapped there (centre-aligned, as the resize is):
x_b = (x + 0.5)·w/W − 0.5, and drawn as `patch`×`patch` squares (bucket pixels) around the
nearest bucket pixel into a hint map (a*b* [h, w, 2] in Lab units, mask [h, w] in {0, 1}).
`propagate` then spreads the hint colours along the image's own edges over a prior (the
model's prediction, or grey).

Everything here is pure computation on arrays except `load_hint_file` / `hints_for_image`,
which read the `--hints` files. Errors are `HintError` (a ValueError): one line that names the
hint or file and says what is wrong.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
from typing import NamedTuple, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

Colour = Union[str, Sequence[float]]
Hint = tuple  # (x, y, colour), or (x, y, colour, patch)

DEFAULT_PATCH = 3          # side of a user hint's square, in bucket pixels
# Propagation defaults, chosen on Kodak/Sintel crops (benchmarks/hints_latency.py --curve).
LAMBDA = 10.0              # weight of a hint pixel's colour (vs the unit-scale edge weights)
MU = 1e-5                  # pull towards the prior everywhere (sets how far a hint reaches)
MAX_ITERS = 30             # CG iterations per grid, finest to second coarsest (exit at TOL)
COARSEST_ITERS = 1000      # CG iterations on the coarsest grid (short side < 32 px: cheap)
TOL = 1e-4                 # relative residual at which the solve stops
MAX_SIGMA2 = 3e-3          # cap on the affinities' σ² (Y = L*/100 units): edges stay edges

_HEX = re.compile(r"#([0-9a-fA-F]{6})")


class HintError(ValueError):
  """A bad hint or hint file; the message (one line) names it."""


@dataclasses.dataclass(frozen=True)
class Scribble:
  """Hints painted on an image: a*b* [H, W, 2] in Lab units where `mask` [H, W] (bool) is set.

  H×W is the input image's size; `source` names it in error messages (a file path).
  """
  ab: np.ndarray
  mask: np.ndarray
  source: str = "scribble"

  @classmethod
  def from_rgba(cls, rgba: np.ndarray, source: str = "scribble") -> "Scribble":
    """An RGBA uint8 array [H, W, 4]: pixels with alpha >= 128 are hints of their colour."""
    from colorjax import color
    rgba = np.asarray(rgba)
    if rgba.ndim != 3 or rgba.shape[-1] != 4 or rgba.dtype != np.uint8:
      raise HintError(f"{source}: expected an 8-bit RGBA image, got {rgba.dtype} {rgba.shape}")
    mask = rgba[..., 3] >= 128
    ab = np.zeros(rgba.shape[:2] + (2,), np.float32)
    if mask.any():
      ab[mask] = color.rgb_to_lab(rgba[mask][:, :3].astype(np.float32) / 255.0)[:, 1:]
    return cls(ab, mask, source)


Hints = Union[Sequence[Hint], Scribble, None]


# ---------------------------------------------------------------------------------------------
# Parsing and validation


def _describe(hint, index: int | None) -> str:
  where = f"hint {index}" if index is not None else "hint"
  try:
    return f"{where} {json.dumps(hint) if not isinstance(hint, tuple) else repr(hint)}"
  except (TypeError, ValueError):
    return f"{where} {hint!r}"


def colour_ab(colour: Colour) -> tuple[float, float]:
  """A colour ("#rrggbb", or (r, g, b) with values in 0..255) → its (a*, b*) in Lab units.

  Raises HintError (without naming a hint: callers add that) for anything else.
  """
  from colorjax import color
  if isinstance(colour, str):
    m = _HEX.fullmatch(colour.strip())
    if not m:
      raise HintError(f"colour {colour!r}: expected '#rrggbb' or (r, g, b) in 0..255")
    rgb = [int(m.group(1)[i:i + 2], 16) for i in (0, 2, 4)]
  else:
    try:
      if any(isinstance(v, bool) for v in colour):    # JSON true is not 1
        raise TypeError
      rgb = [float(v) for v in colour]
    except (TypeError, ValueError):
      raise HintError(f"colour {colour!r}: expected '#rrggbb' or (r, g, b) in 0..255") from None
    if len(rgb) != 3 or not all(np.isfinite(v) and 0 <= v <= 255 for v in rgb):
      raise HintError(f"colour {colour!r}: expected '#rrggbb' or (r, g, b) in 0..255")
  lab = color.rgb_to_lab(np.asarray(rgb, np.float64) / 255.0)
  return float(lab[1]), float(lab[2])


class Point(NamedTuple):
  """A validated hint: position in input pixels, a*b* in Lab units, patch side (bucket px)."""
  x: float
  y: float
  a: float
  b: float
  patch: int


def _number(v) -> float | None:
  if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
    return None
  return float(v) if np.isfinite(v) else None


def check_hint(hint, height: int, width: int, patch: int = DEFAULT_PATCH,
               index: int | None = None) -> Point:
  """Validate one hint for an image of height × width; raises a one-line HintError naming it.

  Accepted: (x, y, colour), (x, y, colour, patch) or {"x", "y", "colour"/"color"[, "patch"]}.
  x in [−0.5, W − 0.5), y in [−0.5, H − 0.5) (on the image); patch a positive int (bucket px).
  """
  name = _describe(hint, index)
  if isinstance(hint, Point):      # already parsed (load_hint_file): only its position may be off
    x, y, colour, patch = hint.x, hint.y, None, hint.patch
  elif isinstance(hint, dict):
    unknown = set(hint) - {"x", "y", "colour", "color", "patch"}
    if unknown or not {"x", "y"} <= set(hint) or not ({"colour", "color"} & set(hint)):
      raise HintError(f"{name}: expected keys x, y, colour[, patch]")
    x, y, colour = hint["x"], hint["y"], hint.get("colour", hint.get("color"))
    patch = hint.get("patch", patch)
  elif isinstance(hint, (tuple, list)) and len(hint) in (3, 4):
    x, y, colour = hint[:3]
    patch = hint[3] if len(hint) == 4 else patch
  else:
    raise HintError(f"{name}: expected (x, y, colour) or {{\"x\", \"y\", \"colour\"}}")
  fx, fy = _number(x), _number(y)
  if fx is None or fy is None:
    raise HintError(f"{name}: x and y must be numbers (pixel column and row)")
  if not (-0.5 <= fx < width - 0.5 and -0.5 <= fy < height - 0.5):
    raise HintError(f"{name}: ({fx:g}, {fy:g}) is outside the {width}×{height} image "
                    f"(x in 0..{width - 1}, y in 0..{height - 1})")
  if isinstance(patch, bool) or not isinstance(patch, (int, np.integer)) or patch < 1:
    raise HintError(f"{name}: patch={patch!r} must be a positive integer (bucket pixels)")
  if isinstance(hint, Point):
    return hint
  try:
    a, b = colour_ab(colour)
  except HintError as e:
    raise HintError(f"{name}: {e}") from None
  return Point(fx, fy, a, b, int(patch))


def check_hints(hints: Hints, height: int, width: int,
                patch: int = DEFAULT_PATCH) -> list[Point] | Scribble:
  """Validate a hint list (→ Points) or a Scribble (its size must be the image's)."""
  if hints is None:
    return []
  if isinstance(hints, Scribble):
    if hints.mask.shape != (height, width):
      h, w = hints.mask.shape
      raise HintError(f"{hints.source}: scribble is {w}×{h} px, the image is {width}×{height}")
    return hints
  if isinstance(hints, (str, bytes, dict)) or not isinstance(hints, Sequence):
    raise HintError(f"hints={hints!r:.60}: expected a list of (x, y, colour)")
  return [check_hint(h, height, width, patch, i) for i, h in enumerate(hints)]


# ---------------------------------------------------------------------------------------------
# Geometry: input pixels → bucket pixels


def to_bucket(x, y, height: int, width: int, bucket: tuple[int, int]):
  """Input-pixel coordinates → the nearest bucket pixel (column, row), both int arrays.

  The bucket is a centre-aligned resize of the whole image: x_b = (x + 0.5)·w/W − 0.5.
  """
  bh, bw = bucket
  xb = (np.asarray(x, np.float64) + 0.5) * (bw / width) - 0.5
  yb = (np.asarray(y, np.float64) + 0.5) * (bh / height) - 0.5
  return (np.clip(np.floor(xb + 0.5), 0, bw - 1).astype(np.int64),
          np.clip(np.floor(yb + 0.5), 0, bh - 1).astype(np.int64))


def rasterise(hints: Hints, height: int, width: int, bucket: tuple[int, int],
              patch: int = DEFAULT_PATCH) -> tuple[np.ndarray, np.ndarray]:
  """Hints of an H×W image → (hint a*b* [h, w, 2] float32 in Lab units, mask [h, w] float32
  in {0, 1}) at the bucket (h, w). Validates first (HintError).

  A point fills a `patch`×`patch` square of bucket pixels centred on its bucket pixel (an
  even side extends one more pixel up/left), clipped to the bucket; a scribble's opaque
  pixels are mapped one by one. Where several hints cover a bucket pixel, their a*b* are
  averaged.
  """
  checked = check_hints(hints, height, width, patch)
  bh, bw = bucket
  total = np.zeros((bh * bw, 2), np.float64)
  count = np.zeros(bh * bw, np.float64)
  if isinstance(checked, Scribble):
    ys, xs = np.nonzero(checked.mask)
    cx, cy = to_bucket(xs, ys, height, width, bucket)
    idx = cy * bw + cx
    np.add.at(total, idx, checked.ab[ys, xs])
    np.add.at(count, idx, 1.0)
  else:
    for p in checked:
      cx, cy = to_bucket(p.x, p.y, height, width, bucket)
      r = p.patch // 2
      y0, y1 = max(int(cy) - r, 0), min(int(cy) - r + p.patch, bh)
      x0, x1 = max(int(cx) - r, 0), min(int(cx) - r + p.patch, bw)
      rows, cols = np.mgrid[y0:y1, x0:x1]
      idx = (rows * bw + cols).ravel()
      total[idx] += (p.a, p.b)
      count[idx] += 1.0
  mask = count > 0
  ab = np.zeros_like(total)
  ab[mask] = total[mask] / count[mask, None]
  return ab.reshape(bh, bw, 2).astype(np.float32), mask.reshape(bh, bw).astype(np.float32)


def model_hint_input(hint_ab: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """The hint-conditioned generator's input [h, w, 3]: (a*/110, b*/110, mask), 0 off hints."""
  from colorjax import color
  m = (mask > 0).astype(np.float32)
  return np.concatenate([hint_ab / np.float32(color.AB_SCALE) * m[..., None], m[..., None]], -1)


# ---------------------------------------------------------------------------------------------
# Hint files (--hints)


HINT_FILE_EXTS = (".json", ".png")


def load_hint_file(path: str, height: int, width: int) -> list[Point] | Scribble:
  """Read a `--hints` file for an H×W image, validated: a JSON list of points, or an RGBA
  scribble PNG of the image's size. Raises HintError('<path>: ...') naming the file (and the
  hint, for a bad point).

  JSON: `[{"x": 120, "y": 45, "colour": "#c03020"}, [300, 200, [40, 90, 200]], ...]`, each
  point optionally with a "patch" (or a 4th element), in bucket pixels.
  """
  ext = os.path.splitext(path)[1].lower()
  if ext == ".json":
    try:
      with open(path, encoding="utf-8") as f:
        points = json.load(f)
    except OSError as e:
      raise HintError(f"{path}: cannot read ({e.strerror or e})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
      raise HintError(f"{path}: not valid JSON ({str(e).splitlines()[0]})") from None
    if not isinstance(points, list):
      raise HintError(f"{path}: expected a JSON list of points, got {type(points).__name__}")
    try:
      return [check_hint(p, height, width, index=i) for i, p in enumerate(points)]
    except HintError as e:
      raise HintError(f"{path}: {e}") from None
  if ext == ".png":
    from PIL import Image
    try:
      with Image.open(path) as im:
        im.load()
        if "A" not in im.getbands() and "transparency" not in im.info:
          raise HintError(f"{path}: a scribble must be an RGBA PNG (opaque pixels are hints); "
                          f"this one is {im.mode} without transparency")
        rgba = np.asarray(im.convert("RGBA"))
    except HintError:
      raise
    except Exception as e:         # PIL raises many types for unreadable files
      raise HintError(f"{path}: cannot read the scribble PNG ({type(e).__name__})") from None
    return check_hints(Scribble.from_rgba(rgba, path), height, width)
  raise HintError(f"{path}: hint files are .json (points) or .png (RGBA scribble)")


def hints_for_image(hints_path: str, image_path: str, height: int, width: int):
  """The hints for one input image from `--hints`: a file (used for every image) or a folder
  holding <image stem>.json or <image stem>.png. A folder without a file for the image
  gives no hints (None); both files for one stem is an error."""
  if not os.path.isdir(hints_path):
    if not os.path.isfile(hints_path):
      raise HintError(f"--hints={hints_path}: no such file or directory")
    return load_hint_file(hints_path, height, width)
  stem = _stem(image_path)
  found = _hint_files(hints_path).get(stem, [])
  if len(found) > 1:
    raise HintError(f"--hints={hints_path}: both {stem}.json and {stem}.png; keep one")
  return load_hint_file(found[0], height, width) if found else None


def unused_hint_files(hints_path: str, inputs: Sequence[str]) -> str | None:
  """A warning line naming the hint files of a `--hints` folder that no input's stem names
  (a typo, or another case: stems match exactly), or None."""
  if not os.path.isdir(hints_path):
    return None
  stems = {_stem(os.path.normpath(i)) for i in inputs}
  unused = sorted(os.path.basename(p) for stem, paths in _hint_files(hints_path).items()
                  if stem not in stems for p in paths)
  if not unused:
    return None
  shown = ", ".join(unused[:5]) + (f" and {len(unused) - 5} more" if len(unused) > 5 else "")
  return (f"warning: --hints={hints_path}: {shown} match no input (a hint file is named by "
          "its input's stem: photo.jpg <- photo.json)")


def _stem(path: str) -> str:
  return os.path.splitext(os.path.basename(path))[0]


def _hint_files(folder: str) -> dict[str, list[str]]:
  """{stem: hint file paths} of a `--hints` folder (extensions in any case), listed once per
  version of the folder: a command asks it once per input."""
  return _hint_index(folder, os.stat(folder).st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _hint_index(folder: str, mtime_ns: int) -> dict[str, list[str]]:
  del mtime_ns      # only the cache key: a file added or removed changes it
  index: dict[str, list[str]] = {}
  for f in sorted(os.listdir(folder)):
    path = os.path.join(folder, f)
    if os.path.splitext(f)[1].lower() in HINT_FILE_EXTS and os.path.isfile(path):
      index.setdefault(_stem(f), []).append(path)
  return index


# ---------------------------------------------------------------------------------------------
# Sampling hints from the truth (evaluation)


class Sampled(NamedTuple):
  """Hints sampled from a true a*b* map: the hint map, its mask, the points' (x, y) [n, 2]."""
  hint_ab: np.ndarray
  mask: np.ndarray
  xy: np.ndarray


def sample_from_truth(ab: np.ndarray, n: int, rng: np.random.Generator,
                      patch: int = DEFAULT_PATCH) -> Sampled:
  """`n` hint points of a true a*b* map [H, W, 2] (any units; Lab for propagate): positions
  uniform over the image, each a `patch`×`patch` square (clipped to the image) holding the
  mean true a*b* over it; later points overwrite earlier ones where squares overlap.

  Positions are the first n rows of rng.random((n, 2)), so with a freshly seeded rng the
  points for n = 5 are the first 5 of those for n = 10: curves over n are nested, and every
  model and method sees the same points (seed the rng per image, e.g. default_rng((seed, i))).
  """
  h, w = ab.shape[:2]
  u = rng.random((int(n), 2))
  ys = np.minimum((u[:, 0] * h).astype(np.int64), h - 1)
  xs = np.minimum((u[:, 1] * w).astype(np.int64), w - 1)
  hint_ab = np.zeros((h, w, 2), np.float32)
  mask = np.zeros((h, w), np.float32)
  r = patch // 2
  for x, y in zip(xs, ys):
    window = (slice(max(y - r, 0), min(y - r + patch, h)), slice(max(x - r, 0), min(x - r + patch, w)))
    hint_ab[window] = ab[window].reshape(-1, 2).mean(axis=0)
    mask[window] = 1.0
  return Sampled(hint_ab, mask, np.stack([xs, ys], axis=1))


# ---------------------------------------------------------------------------------------------
# Edge-aware propagation


def propagate(lightness, hint_ab, hint_mask, prior_ab=None, lam: float = LAMBDA,
              mu: float = MU, iters: int = MAX_ITERS, tol: float = TOL,
              max_sigma2: float = MAX_SIGMA2, return_iters: bool = False) -> np.ndarray:
  """Spread hint colours along the image's edges over a prior: a*b* [h, w, 2] in Lab units.

  Args:
    lightness: L* [h, w] in [0, 100] (at the bucket).
    hint_ab: hint a*b* [h, w, 2] in Lab units (ignored where the mask is 0).
    hint_mask: [h, w] in [0, 1], 1 at hint pixels.
    prior_ab: the colour where no hint reaches, a*b* [h, w, 2] in Lab units (the model's
      prediction); None = grey (propagation alone, Levin et al. 2004 with soft constraints).
    lam, mu: weights of the hint term and of the fade that limits a hint's reach (below);
      iters, tol: CG budget.
    return_iters: also return the number of CG iterations run.

  Spreads the hint colours, and the hints' *reach*, from the hint pixels over the image:
  X = argmin Σ_{r~s} w_rs (X_r − X_s)² + λ Σ_r m_r (X_r − t_r)² + μ Σ_r X_r²,
  once with t = the hint a*b* (giving C) and once with t = 1 (giving the reach R ∈ [0, 1]),
  r~s the 8-neighbour pairs, w_rs = exp(−(Y_r − Y_s)² / (σ_r² + σ_s²)), Y = L*/100 and σ_r²
  from the variance of Y in r's 3×3 window (Levin, Lischinski & Weiss 2004: 0.6·variance,
  floored so the most similar neighbour keeps weight ≥ 0.01), capped at `max_sigma2` (at a
  strong edge the window's variance is the edge's own, which would weaken it). Returns
      U = C + (1 − R) · P,
  i.e. a weighted mean of the hint colours where the hints reach (R ≈ 1: the region of similar
  lightness around a hint, up to edges) and the prior P where they do not (R ≈ 0: across
  strong edges). μ sets the reach: it fades over about sqrt(w/μ) px of flat region. No hint →
  R = 0 → U = P exactly; over a grey prior this is Levin-style propagation alone.

  Why not smoothness on the correction U − P (an earlier version): a correction carries the
  prior's own variation into the hinted region, so a model's blotchy wrong colours survive
  around a hint. On held-out crops (benchmarks/hints.py, 200-step models at 64 px, 34 crops,
  10 hints, automatic model as prior) that gave ΔE00 5.74, worse than propagation over grey
  (4.17); this form gives 4.13, and beats grey at every count. Smoothing U itself against
  the prior (μ Σ (U − P)²) scores the same but flattens the model's colours everywhere, even
  where no hint reaches; the reach blend keeps them there.
  Trusting the prior where it agrees with the hints (blending P + the spread hint errors with
  this result by the spread agreement exp(−|h − P|²/τ²), τ = 4.5; measured on 1,200-step models
  of three seeds): at the models' own 64 px PSNR rose at every count (+0.02 to +0.92 dB), but
  at 128 px, where the priors are blotchier, ΔE00 rose at every count (+0.02 to +0.29) and the
  solve doubled; not kept (README, "Colour hints").

  Why a symmetric graph Laplacian rather than Levin's Σ_r (U_r − Σ_s w̄_rs U_s)² with row-
  normalised w̄: its normal equations are (I − W̄)ᵀ(I − W̄), a 4th-order operator that
  overshoots around hints and squares the condition number (CG then needs ~side² iterations);
  Levin's own solver instead imposes U_r = Σ_s w̄_rs U_s off the hints, a non-symmetric system.
  The Laplacian has the same harmonic behaviour (each U_r a weighted mean of its neighbours
  away from hints and prior), is symmetric positive definite (μ > 0), so Jacobi-preconditioned
  conjugate gradients apply, and obeys a maximum principle (C is a weighted sum of the hint
  colours with weights summing to R ≤ 1, so U never overshoots the hints' and the prior's
  colours). The soft hint term (λ) lets contradictory or noisy hints average.

  Coarse to fine: the grid is halved (2×2 means of L*, hints and mask; λ, μ ×4 as each
  pixel stands for 4) while both sides are even and the short side >= 32; the coarsest grid
  is solved to `tol` (≤ COARSEST_ITERS) from zero, and each finer grid runs at most `iters`
  CG iterations from the upsampled coarser solution. Plain CG needs ~side iterations to carry
  a hint across a region; this way the long range is settled where it is cheap. With the
  default budget the result is an approximate minimiser (on a 256×384 grid with 10 hints,
  mean |error| 0.4–0.6 a*b* units vs a tight solve), no worse against the truth.

  Defaults (λ 10, μ 1e-5, σ² cap 3e-3, patch 3) were chosen on 17 Kodak/Sintel 256 px
  crops, grey prior, PSNR / ΔE00 at 10 points: μ 1e-4: 29.12 dB / 5.33, 1e-5: 30.14 / 5.00,
  1e-6: 30.20 / 5.01; σ² cap none 30.04 / 5.09, 1e-2 30.14 / 5.00, 3e-3 30.26 / 4.83,
  1e-3 29.90 / 4.79; at cap 1e-2, λ 1, 10, 100: 30.09, 30.14, 30.11 dB; patch 1, 3, 5: 29.98, 30.14,
  30.24 dB (0 points: 25.05 dB / 9.78).

  Runs as one jitted JAX program per (h, w) (the stencil as padded slices; CG in
  while_loops), so each bucket shape compiles once. Returns a NumPy float32 array.
  """
  lightness = np.asarray(lightness, np.float32)
  h, w = lightness.shape
  hint_ab = np.asarray(hint_ab, np.float32).reshape(h, w, 2)
  hint_mask = np.asarray(hint_mask, np.float32).reshape(h, w)
  prior = (np.zeros((h, w, 2), np.float32) if prior_ab is None
           else np.asarray(prior_ab, np.float32).reshape(h, w, 2))
  if not hint_mask.any():
    return (prior.copy(), 0) if return_iters else prior.copy()
  out, n = _solve(jnp.asarray(lightness), jnp.asarray(hint_ab), jnp.asarray(hint_mask),
               jnp.asarray(prior), jnp.float32(lam), jnp.float32(mu), jnp.int32(iters),
               jnp.float32(tol), jnp.float32(max_sigma2))
  return (np.asarray(out), int(n)) if return_iters else np.asarray(out)


# The 4 "forward" neighbour offsets (dy, dx); with their opposites, the 8-neighbourhood.
_OFFSETS = ((0, 1), (1, -1), (1, 0), (1, 1))


def _shift(x, dy: int, dx: int):
  """y[r] = x[r + (dy, dx)], zero outside (x [h, w, ...])."""
  h, w = x.shape[:2]
  pad = [(1, 1), (1, 1)] + [(0, 0)] * (x.ndim - 2)
  return jnp.pad(x, pad)[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]


def _unshift(x, dy: int, dx: int):
  """y[r] = x[r − (dy, dx)], zero outside: the transpose of _shift."""
  return _shift(x, -dy, -dx)


def edge_weights(lightness, max_sigma2=None):
  """Levin et al.'s affinities on Y = L*/100 for the 4 forward offsets: [4, h, w] (0 where the
  neighbour is outside the image), symmetric in the pair. `max_sigma2` caps σ² (in Y² units).

  σ_r² = 0.6 × the variance of Y over r's 3×3 window (the part inside the image), at least
  (min over r's neighbours of (Y_r − Y_s)²) / ln 100 (the most similar neighbour keeps weight
  ≥ 0.01) and 2e-6, as in Levin et al.'s code; the cap keeps a strong edge an edge where the
  window's variance is the edge's own.
  """
  y = lightness / 100.0
  h, w = y.shape
  ypad, ones = jnp.pad(y, 1), jnp.pad(jnp.ones_like(y), 1)
  far = jnp.pad(y, 1, constant_values=jnp.inf)     # outside: never the most similar
  s0 = s1 = s2 = 0.0
  d2 = jnp.full_like(y, jnp.inf)
  for dy in (-1, 0, 1):
    for dx in (-1, 0, 1):
      window = (slice(1 + dy, 1 + dy + h), slice(1 + dx, 1 + dx + w))
      v, inside = ypad[window], ones[window]
      s0, s1, s2 = s0 + inside, s1 + v, s2 + v * v
      if dy or dx:
        d2 = jnp.minimum(d2, (far[window] - y) ** 2)
  mean = s1 / s0
  var = jnp.maximum(s2 / s0 - mean * mean, 0.0)
  sigma2 = jnp.maximum(jnp.maximum(0.6 * var, d2 / np.log(100.0)), 2e-6)
  if max_sigma2 is not None:
    sigma2 = jnp.minimum(sigma2, max_sigma2)
  ws = []
  for dy, dx in _OFFSETS:
    s2_pair = sigma2 + _shift(sigma2, dy, dx)
    ws.append(jnp.exp(-(y - _shift(y, dy, dx)) ** 2 / jnp.maximum(s2_pair, 1e-12))
              * _shift(jnp.ones_like(y), dy, dx))
  return jnp.stack(ws)


def _laplacian(weights, x):
  """(Σ_s w_rs (x_r − x_s))_r for x [h, w, 2]: the graph Laplacian as a stencil."""
  out = 0.0
  for k, (dy, dx) in enumerate(_OFFSETS):
    flux = weights[k][..., None] * (x - _shift(x, dy, dx))
    out = out + flux - _unshift(flux, dy, dx)
  return out


def _cg(weights, m, mu, b, x0, iters, tol):
  """Jacobi-preconditioned CG for (L_w + M + μI) x = b from x0, at most `iters` iterations,
  stopping when |r| <= tol·|b|. Returns (x, iterations)."""
  degree = weights.sum(0) + sum(_unshift(weights[k], dy, dx) for k, (dy, dx) in enumerate(_OFFSETS))
  inv_diag = 1.0 / (degree[..., None] + m + mu)

  def apply(x):
    return _laplacian(weights, x) + (m + mu) * x

  r0 = b - apply(x0)
  z0 = inv_diag * r0
  stop = (tol * jnp.linalg.norm(b)) ** 2

  def cond(state):
    i, _, r, _, _ = state
    return (i < iters) & (jnp.vdot(r, r) > stop)

  def body(state):
    i, x, r, p, rz = state
    ap = apply(p)
    alpha = rz / jnp.maximum(jnp.vdot(p, ap), 1e-30)
    x = x + alpha * p
    r = r - alpha * ap
    z = inv_diag * r
    rz_new = jnp.vdot(r, z)
    p = z + (rz_new / jnp.maximum(rz, 1e-30)) * p
    return i + 1, x, r, p, rz_new

  n, x, _, _, _ = jax.lax.while_loop(cond, body, (jnp.int32(0), x0, r0, z0, jnp.vdot(r0, z0)))
  return x, n


def _pool(x):
  """2×2 mean pooling of [h, w, ...] (h, w even)."""
  h, w = x.shape[:2]
  return x.reshape(h // 2, 2, w // 2, 2, *x.shape[2:]).mean(axis=(1, 3))


def _levels(h: int, w: int) -> int:
  """How many times the grid halves: while both sides are even and the short side >= 32."""
  n = 0
  while h % 2 == 0 and w % 2 == 0 and min(h, w) >= 32:
    h, w, n = h // 2, w // 2, n + 1
  return n


def _spread(lightness, target, mask, lam, mu, iters, tol, max_sigma2, depth):
  """X minimising the spread energy at this grid (see `propagate`), started from the next
  coarser grid's X (coarse to fine: the coarse solve carries the long-range spread that plain
  CG needs ~side iterations for).

  On a grid of half the resolution each pixel stands for 4: the Laplacian term is scale-
  free, the hint and μ terms get 4× the weight; targets are pooled mask-weighted.
  """
  weights = edge_weights(lightness, max_sigma2)
  m = (lam * mask)[..., None]
  b = m * target
  if depth > 0:
    pooled_mask = _pool(mask)
    pooled_target = _pool(mask[..., None] * target) / jnp.maximum(pooled_mask, 1e-12)[..., None]
    coarse, n_coarse = _spread(_pool(lightness), pooled_target, pooled_mask, 4 * lam, 4 * mu,
                               iters, tol, max_sigma2, depth - 1)
    x0 = jnp.repeat(jnp.repeat(coarse, 2, axis=0), 2, axis=1)
    budget = iters
  else:                            # the coarsest grid (short side < 32 px): solve it fully
    x0, n_coarse, budget = jnp.zeros_like(b), 0, COARSEST_ITERS
  x, n = _cg(weights, m, mu, b, x0, budget, tol)
  return x, n + n_coarse


def _colours_and_reach(lightness, hint_ab, hint_mask, lam, mu, iters, tol, max_sigma2):
  """(C [h, w, 2], R [h, w, 1], CG iterations): the hint colours and the hints' reach spread
  over the image (see `propagate`), as one 3-channel solve (the same operator)."""
  depth = _levels(*lightness.shape)
  target = jnp.concatenate([hint_ab, jnp.ones_like(hint_ab[..., :1])], axis=-1)
  x, n = _spread(lightness, target, hint_mask, lam, mu, iters, tol, max_sigma2, depth)
  return x[..., :2], jnp.clip(x[..., 2:], 0.0, 1.0), n


@jax.jit
def _solve(lightness, hint_ab, hint_mask, prior, lam, mu, iters, tol, max_sigma2):
  """(C + (1 − R)·P, CG iterations summed over the grids); see `propagate`."""
  c, reach, n = _colours_and_reach(lightness, hint_ab, hint_mask, lam, mu, iters, tol, max_sigma2)
  return c + (1.0 - reach) * prior, n


def guide(L, hints):
  """What a hint model reads besides L: its sparse hints spread along the edges of L.

  Args:
    L: normalised lightness [N, H, W, 1] in [-1, 1] (L*/50 − 1).
    hints: the sparse hint map [N, H, W, 3] = (hint a*/110, hint b*/110, mask in {0, 1}).
  Returns [N, H, W, 3] float32 = (C_a/110, C_b/110, R): the hints propagated over grey and their
  reach in [0, 1] (`propagate`'s C and R, default constants), zero where there is no hint; no
  gradient flows through it. A dense guide is far easier for a network to use than a few
  scattered points: trained for the same steps, a generator given the points themselves
  barely used them (benchmarks/hints.py). Jittable; batched with vmap.
  """
  from colorjax import color
  lightness = color.denormalize_l(L[..., 0].astype(jnp.float32))
  hints = jax.lax.stop_gradient(hints.astype(jnp.float32))
  # A mask outside [0, 1] would make the system indefinite (NaN): hints are weights.
  hint_ab, mask = color.denormalize_ab(hints[..., :2]), jnp.clip(hints[..., 2], 0.0, 1.0)

  def one(lightness, hint_ab, mask):
    c, reach, _ = _colours_and_reach(lightness, hint_ab, mask, LAMBDA, MU, MAX_ITERS, TOL,
                                     MAX_SIGMA2)
    return jnp.concatenate([color.normalize_ab(c), reach], axis=-1)

  return jax.lax.stop_gradient(jax.vmap(one)(lightness, hint_ab, mask))


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
