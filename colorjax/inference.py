"""Colorize any image with a trained generator: the `Colorizer` API and the colorize command.

  import colorjax
  colorize = colorjax.load("runs/demo")          # run dir or checkpoint dir; best checkpoint
  rgb = colorize(pil_image_or_array)             # H×W×3 uint8, same size as the input
  rgbs = colorize.many(images, batch_size=8)     # throughput

How an image of any size is coloured:
  1. The input's lightness L* is computed in float at full resolution (colour inputs are
     reduced to their L*, so a colour photo can be "re-colorized" for comparison).
  2. L* is resized (antialiased bicubic) to a *bucket*: the short side becomes `render_size`
     (the training crop size, as in training, where the short side was resized to it before
     cropping) and the long side keeps the aspect ratio, rounded to a multiple of 32 and capped
     at `MAX_ASPECT` × `render_size`. Objects therefore appear at the scale the model was
     trained on, undistorted for aspects up to 4:1; and since bucket sides are multiples of 32
     in a short list, a folder of frames compiles once per bucket, not once per image.
  3. The predicted ab map is upsampled (bilinear: no overshoot on chroma) to the full size and
     joined with the *original* full-resolution L*, so no detail is lost.
  4. Chroma is scaled by `saturation` (a display control: it makes right and wrong colours
     louder alike; for colours as vivid as the truth, train with configs/vivid.py), then
     Lab → linear RGB; pixels outside the sRGB gamut
     are desaturated towards the grey of the same luminance (a closed-form, per-pixel mix in
     linear RGB), which keeps L* exactly instead of clipping channels (which shifts L*).
     The output's L* equals the input's up to 8-bit rounding (< 0.5).

The full-resolution colour math is float32 NumPy (`colorjax.color.lab_to_rgb8`) rather than
`colorjax.color.lab_to_rgb` because the gamut mapping needs the unclipped linear RGB, and
because it avoids compiling JAX code per input size.
"""
from __future__ import annotations

import collections
import dataclasses
import glob
import math
import os
import sys
import time
import weakref
from typing import Any, Iterable, Sequence, Union

import numpy as np
from PIL import Image, ImageOps

from colorjax import checkpoints, color, config_lib
from colorjax import hints as hints_lib
from colorjax.data import decode, sources

MIN_SIDE = 2          # px; smaller images carry no usable structure
MAX_ASPECT = 4        # bucket long side at most MAX_ASPECT × render_size (bounds compute)
BUCKET_STEP = 32      # the encoder downsamples 5 times
OUTPUT_FORMATS = {"png": ("PNG", ".png"), "jpg": ("JPEG", ".jpg")}
# Extensions written in the input's own format; anything else (e.g. .gif) is written as PNG.
WRITABLE = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF",
            ".tiff": "TIFF", ".webp": "WEBP"}

ImageLike = Union[Image.Image, np.ndarray, str, os.PathLike]

AB_SCALE = color.AB_SCALE                    # model ab in [-1, 1] ↔ a*, b*


# ---------------------------------------------------------------------------------------------
# Colour math: written once, in colorjax.color (its constants: scikit-image's sRGB matrix and
# D65 white). These names stay importable from here.

_RGB_TO_XYZ = color.XYZ_FROM_RGB
_linear_lut = color.linear_lut
srgb_to_linear = color.srgb_to_linear
linear_to_srgb = color.linear_to_srgb
linear_to_srgb8 = color.linear_to_srgb8
luminance_to_lightness = color.luminance_to_lightness
lab_to_rgb8 = color.lab_to_rgb8


# ---------------------------------------------------------------------------------------------
# Inputs


def open_image(path: str | os.PathLike) -> Image.Image:
  """An image file as an upright (EXIF-oriented), loaded PIL image in its own mode.

  Raises decode.BadImage('<path>: <reason>') for unreadable, non-image or too-small files.
  """
  return decode.open_image(os.fspath(path))


def pil_to_array(im: Image.Image) -> np.ndarray:
  """A PIL image of any mode → H×W (grey), H×W×2 (grey+alpha), H×W×3 or H×W×4 array.

  8-bit modes give uint8, 16-bit grey gives uint16 (mode "I" is taken as 16-bit, as PNG
  decoders produce it), "F" gives float32 (expected in [0, 1]). EXIF orientation is applied.
  """
  im = ImageOps.exif_transpose(im)
  mode = im.mode
  if mode.startswith("I;16") or mode == "I":
    a = np.asarray(im)
    return np.clip(a.astype(np.int64), 0, 65535).astype(np.uint16)
  if mode == "F":
    return np.asarray(im, np.float32)
  if mode in ("P", "PA"):
    has_alpha = mode == "PA" or "transparency" in im.info
    im = im.convert("RGBA" if has_alpha else "RGB")
  elif mode == "1":
    im = im.convert("L")
  elif mode == "La":
    im = im.convert("LA")
  elif mode in ("RGBa", "RGBX"):
    im = im.convert("RGBA" if mode == "RGBa" else "RGB")
  elif mode not in ("L", "LA", "RGB", "RGBA"):
    # The last band, not any: LAB's bands are L, A (a*), B.
    im = im.convert("RGBA" if im.getbands()[-1] == "A" else "RGB")
  return np.asarray(im)


def _unit_scale(a: np.ndarray) -> float:
  """The value of white for an array's dtype (uint8 255, uint16 65535, float 1)."""
  if a.dtype == np.uint8:
    return 255.0
  if a.dtype == np.uint16:
    return 65535.0
  if a.dtype == np.bool_ or np.issubdtype(a.dtype, np.floating):
    return 1.0
  raise ValueError(f"image dtype {a.dtype}: expected uint8, uint16, or float in [0, 1]")


@dataclasses.dataclass(frozen=True)
class Prepared:
  """An input reduced to what colorization needs (full resolution)."""
  luminance: np.ndarray          # Y [H, W] float32 in [0, 1], linear light
  lightness: np.ndarray          # L* [H, W] float32 in [0, 100]
  alpha: np.ndarray | None       # [H, W] uint8, or None


def prepare(image: ImageLike) -> Prepared:
  """Decode any accepted input (path, PIL image, array) to full-resolution Y, L* and alpha.

  Raises ValueError (or decode.BadImage for files) with a one-line reason.
  """
  if isinstance(image, Prepared):
    return image
  if isinstance(image, (str, os.PathLike)):
    image = open_image(image)
  if isinstance(image, Image.Image):
    image = pil_to_array(image)
  if not isinstance(image, (np.ndarray, list, tuple)) and not hasattr(image, "__array__"):
    raise ValueError(f"image: expected a file path, a PIL image or an array, got "
                     f"{type(image).__name__}")
  a = np.asarray(image)
  if a.ndim == 3 and a.shape[-1] == 1:
    a = a[..., 0]
  if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (2, 3, 4)):
    raise ValueError(f"image of shape {a.shape}: expected H×W grey or H×W×3 / H×W×4 colour")
  h, w = a.shape[:2]
  if min(h, w) < MIN_SIDE:
    raise ValueError(f"image too small: {w}×{h} px (need at least {MIN_SIDE} px per side)")
  scale = _unit_scale(a)
  if scale == 1.0:
    a = a.astype(np.float32)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo >= -1e-6 and hi <= 1 + 1e-6):
      raise ValueError(f"float image values must be finite and in [0, 1]; got {lo:g}..{hi:g}")
    a = np.clip(a, 0.0, 1.0)
  colour, alpha = a, None
  if a.ndim == 3 and a.shape[-1] in (2, 4):      # grey + alpha, RGB + alpha
    colour, alpha = a[..., :-1], a[..., -1]
    if colour.shape[-1] == 1:
      colour = colour[..., 0]
  luminance = _luminance(colour, scale)
  if alpha is not None:
    alpha = np.floor(alpha.astype(np.float32) * (255.0 / scale) + 0.5).astype(np.uint8)
  return Prepared(luminance, luminance_to_lightness(luminance), alpha)


def _luminance(colour: np.ndarray, scale: float) -> np.ndarray:
  """Relative luminance Y [H, W] of grey [H, W] or sRGB [H, W, 3] values (white = `scale`)."""
  if colour.dtype in (np.uint8, np.uint16):
    linear = _linear_lut(8 if colour.dtype == np.uint8 else 16)[colour]
  else:
    linear = srgb_to_linear(colour)
  if linear.ndim == 2:
    return linear.astype(np.float32)
  return (linear @ _RGB_TO_XYZ[1].astype(np.float32)).astype(np.float32)


def bucket_shape(height: int, width: int, render_size: int,
                 max_aspect: float = MAX_ASPECT) -> tuple[int, int]:
  """The model's input size (h, w) for an image: short side `render_size`, aspect kept.

  The long side is rounded to a multiple of 32 and capped at `max_aspect` × `render_size`.
  """
  short, long = min(height, width), max(height, width)
  aspect = min(long / short, max_aspect)
  long_b = max(render_size, BUCKET_STEP * round(render_size * aspect / BUCKET_STEP))
  return (render_size, long_b) if height <= width else (long_b, render_size)


def _resize(channel: np.ndarray, height: int, width: int, resample) -> np.ndarray:
  """Resize one float32 channel [H, W] with PIL (antialiased when shrinking)."""
  if channel.shape == (height, width):
    return channel.astype(np.float32)
  im = Image.fromarray(np.ascontiguousarray(channel, np.float32))
  return np.asarray(im.resize((width, height), resample), np.float32)


# ---------------------------------------------------------------------------------------------
# The Colorizer


class Colorizer:
  """A trained generator that colours images of any size (see the module docstring).

  Call it on one image, or use `many` for throughput. Inputs: a file path, a PIL image (EXIF
  orientation applied; any mode, 16-bit and palette included), or a NumPy array H×W (grey),
  H×W×3 (colour: only its lightness is used) or H×W×4 (colour + alpha), uint8, uint16 or
  float in [0, 1]. Output: uint8 H×W×3 sRGB — or H×W×4 with the input's alpha carried
  through when the input has an alpha channel — at the input's size.
  """

  def __init__(self, config, variables: dict, render_size: int | None = None,
               step: int | None = None, path: str | None = None):
    import jax
    import jax.numpy as jnp
    from colorjax import models
    render_size = int(config.image_size if render_size is None else render_size)
    if render_size < BUCKET_STEP or render_size % BUCKET_STEP:
      raise ValueError(f"render_size={render_size}: must be a positive multiple of "
                       f"{BUCKET_STEP} (the encoder downsamples 5 times)")
    self.config, self.step, self.render_size, self.path = config, step, render_size, path
    g_model, _ = models.build_models(config)
    # float32 everywhere: CPU has no fast bfloat16, and inference cost is small anyway.
    g_model = g_model.clone(dtype=jnp.float32)
    self._variables = jax.device_put(variables)
    if self.takes_hints:    # a hint-conditioned generator: L plus (a/110, b/110, mask)
      self._apply = jax.jit(lambda v, L, H: g_model.apply(v, L, hints=H, train=False))
    else:
      self._apply = jax.jit(lambda v, L: g_model.apply(v, L, train=False))
    self._compiled: dict[tuple[int, ...], Any] = {}
    # The model's last few automatic predictions, keyed by Prepared object: clicking hints on
    # the same prepared image then costs only propagation and rendering (not the model).
    self._recent: collections.OrderedDict[int, tuple[Any, np.ndarray, np.ndarray]] = (
        collections.OrderedDict())

  @property
  def takes_hints(self) -> bool:
    """Whether the generator was trained with hint channels (`config.model.hints`)."""
    return bool(self.config.model.get("hints", False))

  @property
  def checkpoint_info(self) -> dict:
    """What this colorizer runs: {"path", "step", "config", "takes_hints", "render_size"}."""
    return {"path": self.path, "step": self.step, "config": self.config.get("name", ""),
            "takes_hints": self.takes_hints, "render_size": self.render_size}

  @property
  def compiled_shapes(self) -> tuple[tuple[int, ...], ...]:
    """The model input shapes [B, h, w, 1] compiled so far (one entry per compilation)."""
    return tuple(self._compiled)

  def _predict(self, L: np.ndarray, H: np.ndarray | None = None) -> np.ndarray:
    """Normalised L [B, h, w, 1] (+ hint input [B, h, w, 3] for a hint model) → ab
    [B, h, w, 2] in [-1, 1], compiling once per shape."""
    import jax
    fn = self._compiled.get(L.shape)
    args = (L,) if H is None else (L, H)
    if fn is None:
      specs = [jax.ShapeDtypeStruct(a.shape, np.float32) for a in args]
      fn = self._apply.lower(self._variables, *specs).compile()
      self._compiled[L.shape] = fn
    return np.asarray(fn(self._variables, *args))

  def bucket(self, prepared: Prepared) -> tuple[int, int]:
    """The render bucket (h, w) of a prepared image: the model's input size for it."""
    return bucket_shape(*prepared.lightness.shape, self.render_size)

  def bucket_lightness(self, prepared: Prepared) -> np.ndarray:
    """L* [h, w] in [0, 100] of a prepared image at its render bucket (antialiased bicubic)."""
    bh, bw = self.bucket(prepared)
    return np.clip(_resize(prepared.lightness, bh, bw, Image.BICUBIC), 0.0, 100.0)

  def hint_maps(self, prepared: Prepared, hints: hints_lib.Hints,
                patch: int = hints_lib.DEFAULT_PATCH) -> tuple[np.ndarray, np.ndarray]:
    """An image's hints (input pixel coordinates) → (a*b* [h, w, 2] Lab units, mask [h, w])
    at its render bucket; raises hints.HintError (one line, naming the hint)."""
    return hints_lib.rasterise(hints, *prepared.lightness.shape, self.bucket(prepared), patch)

  def predict(self, prepared_list: Sequence[ImageLike], hints=None, batch_size: int = 8,
              patch: int = hints_lib.DEFAULT_PATCH) -> list[np.ndarray]:
    """The colours: a*b* [h, w, 2] float32 in Lab units at each image's render bucket.

    `prepared_list`: `Prepared` inputs (anything else is passed through `prepare`).
    `hints`: None, or one entry per image: None, a list of (x, y, colour[, patch]) in the
    image's pixel coordinates, or a hints.Scribble. All hints are validated before the model
    runs (hints.HintError). A hint model (config.model.hints) also reads the sparse hint map;
    for every model, an image's hints are then propagated over the model's prediction
    (hints.propagate), so where no hint reaches, the model's colour is kept exactly.

    Images are batched by bucket shape; batches are padded to `batch_size` (or, when a
    bucket has fewer images, to the next power of two), so each bucket compiles at most
    log2(batch_size) + 1 times. Results may differ from single-image calls in the last
    float bits: XLA sums convolutions in a batch-size-dependent order. An automatic model's
    predictions for the last few `Prepared` objects are kept: asking again for the same
    object (e.g. after each click of an interactive session) skips the model.
    """
    if batch_size < 1:
      raise ValueError(f"batch_size={batch_size}: must be >= 1")
    prepared = [prepare(im) for im in prepared_list]
    if hints is None:
      hints = [None] * len(prepared)
    elif isinstance(hints, (str, hints_lib.Scribble)) or len(hints) != len(prepared):
      raise ValueError(f"hints: expected one list of hints per image ({len(prepared)}), "
                       f"got {hints!r:.80}")
    maps = [None if h is None else self.hint_maps(p, h, patch) for p, h in zip(prepared, hints)]
    small: dict[int, np.ndarray] = {}      # bucket L* per image
    prior: dict[int, np.ndarray] = {}      # the model's a*b* per image (Lab units)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, p in enumerate(prepared):
      hit = None if self.takes_hints else self._recall(p)
      if hit is not None:
        small[i], prior[i] = hit
      else:
        groups.setdefault(self.bucket(p), []).append(i)
    for (bh, bw), members in groups.items():
      for start in range(0, len(members), batch_size):
        chunk = members[start:start + batch_size]
        padded = min(batch_size, 1 << (len(chunk) - 1).bit_length())
        L = np.zeros((padded, bh, bw, 1), np.float32)
        H = np.zeros((padded, bh, bw, 3), np.float32) if self.takes_hints else None
        for j, i in enumerate(chunk):
          small[i] = np.clip(_resize(prepared[i].lightness, bh, bw, Image.BICUBIC), 0.0, 100.0)
          L[j, ..., 0] = np.clip(small[i] / 50.0 - 1.0, -1.0, 1.0)
          if H is not None and maps[i] is not None:
            H[j] = hints_lib.model_hint_input(*maps[i])
        ab = self._predict(L, H)
        for j, i in enumerate(chunk):
          prior[i] = ab[j] * np.float32(AB_SCALE)
          if not self.takes_hints:
            self._remember(prepared[i], small[i], prior[i])
    # No hint pixel: the model's colours exactly (propagate returns the prior unchanged).
    return [prior[i].copy() if maps[i] is None else
            hints_lib.propagate(small[i], *maps[i], prior_ab=prior[i]) for i in range(len(prepared))]

  _RECENT = 4          # automatic predictions kept (each a bucket-sized a*b* map)

  def _recall(self, p: Prepared):
    entry = self._recent.get(id(p))
    if entry is None or entry[0]() is not p:       # not seen, or an id reused by a new object
      return None
    self._recent.move_to_end(id(p))
    return entry[1], entry[2]

  def _remember(self, p: Prepared, small: np.ndarray, ab: np.ndarray) -> None:
    self._recent[id(p)] = (weakref.ref(p), small, ab)
    while len(self._recent) > self._RECENT:
      self._recent.popitem(last=False)

  def render(self, prepared: Prepared, ab_bucket: np.ndarray, saturation: float = 1.0) -> np.ndarray:
    """a*b* at the bucket (Lab units) + the full-resolution L* → uint8 H×W×3 (H×W×4 with alpha).

    The ab map is upsampled (bilinear) to the input's size, scaled by `saturation`, joined
    with the input's own L* and converted with gamut mapping that keeps L*.
    """
    saturation = _check_saturation(saturation)
    h, w = prepared.lightness.shape
    ab = np.stack([_resize(ab_bucket[..., c], h, w, Image.BILINEAR) for c in range(2)], -1)
    rgb = lab_to_rgb8(prepared.lightness, prepared.luminance, ab * np.float32(saturation))
    if prepared.alpha is not None:
      rgb = np.concatenate([rgb, prepared.alpha[..., None]], axis=-1)
    return rgb

  def __call__(self, image: ImageLike, hints: hints_lib.Hints = None, saturation: float = 1.0,
               patch: int = hints_lib.DEFAULT_PATCH) -> np.ndarray:
    """Colour one image; returns uint8 H×W×3 (H×W×4 if the input has alpha).

    `hints`: [(x, y, colour), ...] in the image's pixel coordinates (x = column, y = row;
    colour "#rrggbb" or (r, g, b) 0..255, of which a*b* is used), or a hints.Scribble;
    `patch`: a hint's square side in bucket pixels. Lightness always stays the input's.
    """
    return self.many([image], batch_size=1, saturation=saturation,
                     hints=None if hints is None else [hints], patch=patch)[0]

  def many(self, images: Iterable[ImageLike], batch_size: int = 8, saturation: float = 1.0,
           hints=None, patch: int = hints_lib.DEFAULT_PATCH) -> list[np.ndarray]:
    """Colour many images, batched by bucket shape (see `predict`); outputs in input order.

    `hints`: None or one hint list (or None) per image. Outputs may differ from
    single-image calls by one 8-bit level: XLA sums convolutions in a batch-size-dependent
    order.
    """
    saturation = _check_saturation(saturation)
    prepared = [prepare(im) for im in images]
    abs_ = self.predict(prepared, hints=hints, batch_size=batch_size, patch=patch)
    return [self.render(p, ab, saturation) for p, ab in zip(prepared, abs_)]

  def video(self, src: str, dst: str, temporal: float | None = None, saturation: float = 1.0,
            hints=None, batch_size: int = 8, progress: bool = True):
    """Colour a video file (or a folder of numbered frames) into `dst`, as the colorize command
    does: same size, timestamps and audio, shot cuts, colour stabilised along the optical flow
    (`temporal` 0..1, 0 = each frame alone; default colorjax.temporal.DEFAULT_STRENGTH). See
    colorjax.video. Returns its Result (output, frames, cuts, seconds)."""
    from colorjax import video
    return video.colorize(self, src, dst, temporal, saturation, hints, batch_size, progress)


def _check_saturation(saturation: float) -> float:
  saturation = float(saturation)
  if not (math.isfinite(saturation) and saturation >= 0):
    raise ValueError(f"saturation={saturation}: must be a finite number >= 0")
  return saturation


def load(path: str | os.PathLike, step: int | None = None,
         render_size: int | None = None) -> Colorizer:
  """A Colorizer from a run directory or a checkpoint directory (best checkpoint by default).

  Args:
    path: a run directory (with checkpoints/), its checkpoints/ folder, or one step's folder.
    step: the checkpoint step to use (default: best by validation loss, else the latest).
    render_size: the model's short-side resolution in px, a multiple of 32 (default: the
      training image size).
  """
  config, variables, step = checkpoints.restore_generator(os.fspath(path), step)
  return Colorizer(config, variables, render_size=render_size, step=step, path=os.fspath(path))


# ---------------------------------------------------------------------------------------------
# The colorize command


@dataclasses.dataclass
class Plan:
  """What the command will do: (input, output) pairs, and inputs skipped up front."""
  jobs: list[tuple[str, str]]
  skipped: list[tuple[str, str]]


def _has_magic(pattern: str) -> bool:
  return any(c in pattern for c in "*?[")


def _glob_base(pattern: str) -> str:
  """The folder part of a glob pattern before its first wildcard ('.' if none)."""
  parts = pattern.split(os.sep)
  fixed = []
  for part in parts[:-1]:
    if _has_magic(part):
      break
    fixed.append(part)
  return os.sep.join(fixed) or (os.sep if pattern.startswith(os.sep) else ".")


def _inside(path: str, folder: str) -> bool:
  """True if `path` is strictly below `folder` (after resolving links)."""
  path, folder = os.path.realpath(path), os.path.realpath(folder)
  return path.startswith(folder.rstrip(os.sep) + os.sep)


def _walk(folder: str, output: str) -> list[str]:
  """Images below `folder`, minus an output folder nested inside it (earlier results)."""
  files = sources.list_images(folder)
  if _inside(output, folder):
    files = [f for f in files if not _inside(f, output)]
  return files


def _expand(inp: str, output: str) -> tuple[list[tuple[str, str]], str | None]:
  """[(file, path relative to the output dir)] for one --input, or a reason it gives none."""
  if os.path.isdir(inp):
    files = _walk(inp, output)
    return [(f, os.path.relpath(f, inp)) for f in files], None if files else "no image files"
  if os.path.isfile(inp):
    return [(inp, os.path.basename(inp))], None
  if not _has_magic(inp):
    return [], "no such file or directory"
  base, found = _glob_base(inp), []
  for match in sorted(glob.glob(inp, recursive=True)):
    if os.path.isdir(match):
      found += [(f, os.path.relpath(f, base)) for f in _walk(match, output)]
    elif not (_inside(output, base) and _inside(match, output)):
      found.append((match, os.path.relpath(match, base)))
  return found, None if found else "pattern matches no files"


def _output_path(output: str, rel: str, fmt: str | None) -> str:
  stem, ext = os.path.splitext(rel)
  if fmt:
    ext = OUTPUT_FORMATS[fmt][1]
  elif ext.lower() not in WRITABLE:
    ext = ".png"
  return os.path.join(output, stem + ext)


def plan(inputs: Sequence[str], output: str, fmt: str | None = None) -> Plan:
  """Expand files, folders (recursive) and glob patterns into (input, output) pairs.

  The output tree mirrors each folder (or a pattern's fixed prefix); a file given directly
  lands at the top. Never overwrites an input: such files, and output-name collisions, are
  skipped with a reason. The same file reached twice is done once.
  """
  candidates, skipped = [], []
  for inp in inputs:
    found, reason = _expand(inp, output)
    if reason:
      skipped.append((inp, reason))
    candidates += found
  input_paths = {os.path.realpath(src): src for src, _ in candidates}
  jobs, seen_src, seen_dst = [], set(), {}
  for src, rel in candidates:
    real = os.path.realpath(src)
    if real in seen_src:
      continue
    seen_src.add(real)
    dst = _output_path(output, rel, fmt)
    real_dst = os.path.realpath(dst)
    if real_dst in input_paths:
      skipped.append((src, f"output {dst} would overwrite the input {input_paths[real_dst]}"))
    elif real_dst in seen_dst:
      skipped.append((src, f"output {dst} is already the output of {seen_dst[real_dst]}"))
    else:
      seen_dst[real_dst] = src
      jobs.append((src, dst))
  return Plan(jobs, skipped)


def save_image(rgb: np.ndarray, path: str) -> None:
  """Write uint8 RGB(A) in the format of `path`'s extension (JPEG drops alpha)."""
  fmt = WRITABLE.get(os.path.splitext(path)[1].lower(), "PNG")
  im = Image.fromarray(rgb)
  if fmt == "JPEG" and im.mode == "RGBA":
    im = im.convert("RGB")
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
  im.save(path, format=fmt, **options)


def _skip_reason(error: Exception) -> str:
  """The reason part of a BadImage ('<path>: <reason>') or another one-line error."""
  text = str(error)
  return text.split(": ", 1)[1] if isinstance(error, decode.BadImage) and ": " in text else text


def _image_size(path: str) -> tuple[int, int] | None:
  """(height, width) of an image file as displayed (EXIF orientation applied), from its
  header only; None if it cannot be opened (the colorize loop then reports it)."""
  try:
    with Image.open(path) as im:
      w, h = im.size
      if im.getexif().get(0x0112) in (5, 6, 7, 8):     # rotated by 90°: sides swap
        w, h = h, w
      return h, w
  except Exception:      # PIL raises many types for unreadable files
    return None


def load_cli_hints(hints_path: str, jobs: Sequence[tuple[str, str]],
                   other_inputs: Sequence[str] = ()) -> dict[str, Any]:
  """{input path: validated hints} for `--hints=FILE|FOLDER`, all read before any image is
  coloured; a bad file or hint raises ConfigError('--hints: <file>: <hint>: <reason>').
  Warns about files in a FOLDER that neither an image nor `other_inputs` (videos) name."""
  if not os.path.exists(hints_path):
    raise config_lib.ConfigError(f"--hints={hints_path}: no such file or directory")
  found = {}
  for src, _ in jobs:
    size = _image_size(src)
    if size is None:
      continue
    try:
      found[src] = hints_lib.hints_for_image(hints_path, src, *size)
    except hints_lib.HintError as e:
      raise config_lib.ConfigError(f"--hints: {e}") from None
  unused = hints_lib.unused_hint_files(hints_path, [*(src for src, _ in jobs), *other_inputs])
  if unused:
    print(unused, file=sys.stderr)
  return found


def colorize_cli(workdir: str, inputs: Sequence[str], output: str | None,
                 saturation: float = 1.0, fmt: str | None = None, step: int | None = None,
                 hints: str | None = None, other_inputs: Sequence[str] = ()) -> int:
  """The `--mode=colorize` command. Returns 0 (all done), 1 (some skipped).

  Images go through the model one at a time, so that the command's pixels are exactly those
  of `Colorizer(image)` (XLA's CPU convolutions round differently for different batch
  sizes); on CPU the full-resolution colour conversion costs more than the model, so
  batching would gain little here.

  `hints`: `--hints`, a JSON/PNG hint file used for every input, or a folder with one per
  input named by the image's stem (none there: no hints for that image); all are validated
  before colouring starts.

  Usage errors (no inputs, no --output, bad --saturation/--format/--hints, nothing to do) raise
  config_lib.ConfigError; a missing or broken run raises checkpoints.CheckpointError; both
  become one line and exit code 2 in colorjax.cli.
  """
  from tqdm import tqdm
  if not inputs:
    raise config_lib.ConfigError("--input: give at least one image file, folder or glob pattern")
  if not output:
    raise config_lib.ConfigError("--output: required (the folder to write colour images to)")
  if os.path.exists(output) and not os.path.isdir(output):
    raise config_lib.ConfigError(f"--output={output}: exists and is not a directory")
  if not os.path.isdir(output) and os.path.splitext(output)[1].lower() in (
      *sources.IMAGE_EXTENSIONS, ".gif"):
    raise config_lib.ConfigError(f"--output={output}: the folder to write the colour images "
                                 "to, not a file name")
  if fmt is not None and fmt not in OUTPUT_FORMATS:
    raise config_lib.ConfigError(f"--format={fmt!r}: expected png or jpg")
  try:
    saturation = _check_saturation(saturation)
  except ValueError as e:
    raise config_lib.ConfigError(f"--{e}") from None
  todo = plan(inputs, output, fmt)
  if not todo.jobs:
    for path, reason in todo.skipped:
      print(f"skipped {path}: {reason}", file=sys.stderr)
    raise config_lib.ConfigError(f"--input: nothing to colorize in {', '.join(inputs)}")
  image_hints = load_cli_hints(hints, todo.jobs, other_inputs) if hints else {}
  colorizer = load(workdir, step=step)
  skipped, done = list(todo.skipped), 0
  t0 = time.perf_counter()
  with tqdm(total=len(todo.jobs), unit="img", desc="colorize", file=sys.stderr) as bar:
    for src, dst in todo.jobs:
      try:
        rgb = colorizer(prepare(src), hints=image_hints.get(src), saturation=saturation)
        save_image(rgb, dst)
        done += 1
      except (decode.BadImage, ValueError) as e:
        skipped.append((src, _skip_reason(e)))
      except OSError as e:
        skipped.append((src, f"cannot write {dst} ({type(e).__name__}: {e})"))
      bar.update(1)
  seconds = time.perf_counter() - t0
  print(f"colorized {done}, skipped {len(skipped)} -> {output} "
        f"({done / max(seconds, 1e-9):.2f} images/s, checkpoint step {colorizer.step})")
  for path, reason in skipped:
    print(f"  skipped {path}: {reason}")
  return 1 if skipped else 0
