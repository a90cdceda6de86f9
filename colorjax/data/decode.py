"""Record → example: decode, orient, resize/crop, flip, RGB → normalised Lab. Runs in workers.

Every failure on a bad file becomes a `BadImage` with a one-line reason, so the pipeline can
skip it (or stop, with `on_bad_image="error"`) instead of crashing inside PIL.
"""
from __future__ import annotations

import concurrent.futures
import functools
import json
import os
import struct
import warnings
from typing import Sequence

import numpy as np
from PIL import Image, ImageOps

from colorjax import color
from colorjax.data import tfds_source
from colorjax.data.errors import BadImage  # noqa: F401  (re-exported: decode.BadImage)


def _builtin(record, size: int) -> np.ndarray:
  from colorjax.data import builtin
  _, domain, index, split = record
  return builtin.render(domain, int(index), size, split)


def open_image(path: str, min_size: int | None = None) -> Image.Image:
  """Open an image file as an upright (EXIF-oriented), loaded PIL image in its own mode.

  Every failure is a BadImage('<path>: <reason>'). With `min_size`, JPEGs are decoded at the
  smallest DCT scale that keeps both sides at least `min_size` px (several times faster for
  large stills when the result is resized anyway). Images with a side under 2 px are refused.
  """
  try:
    with warnings.catch_warnings():
      # Over PIL's MAX_IMAGE_PIXELS PIL only warns; treat that as an error too (a bomb).
      warnings.simplefilter("error", Image.DecompressionBombWarning)
      with Image.open(path) as im:
        if min_size and im.format == "JPEG":
          im.draft("RGB" if im.mode in ("RGB", "YCbCr") else None, (min_size, min_size))
        im = ImageOps.exif_transpose(im)
        im.load()
  except (Image.DecompressionBombError, Image.DecompressionBombWarning):
    raise BadImage(f"{path}: too many pixels (over PIL's decompression-bomb limit of "
                   f"{Image.MAX_IMAGE_PIXELS} px)") from None
  except FileNotFoundError:
    what = "broken symbolic link" if os.path.islink(path) else "no such file"
    raise BadImage(f"{path}: cannot read ({what})") from None
  except PermissionError:
    raise BadImage(f"{path}: cannot read (permission denied)") from None
  except IsADirectoryError:
    raise BadImage(f"{path}: is a directory, not an image") from None
  except Image.UnidentifiedImageError:
    empty = os.path.exists(path) and os.path.getsize(path) == 0
    raise BadImage(f"{path}: " + ("empty file (0 bytes)" if empty else
                                  "not an image file PIL can read")) from None
  except (OSError, SyntaxError, ValueError, EOFError, struct.error, MemoryError) as e:
    reason = str(e).splitlines()[0] if str(e) else type(e).__name__
    if "truncated" in reason or isinstance(e, EOFError):
      reason = f"truncated or corrupt file ({reason})"
    raise BadImage(f"{path}: cannot decode ({reason})") from None
  if min(im.size) < 2:
    raise BadImage(f"{path}: too small ({im.size[0]}×{im.size[1]} px; need at least 2×2)")
  return im


def open_rgb(path: str, min_size: int | None = None) -> Image.Image:
  """`open_image` converted to 8-bit RGB. Images smaller than the crop are accepted
  (upscaled later)."""
  im = open_image(path, min_size)
  try:
    return to_rgb(im)
  except (OSError, ValueError) as e:
    raise BadImage(f"{path}: cannot convert mode {im.mode} to RGB ({e})") from None


def to_rgb(im: Image.Image) -> Image.Image:
  """Any PIL mode (grey, 16-bit, palette, RGBA, CMYK) → 8-bit RGB."""
  if im.mode in ("I;16", "I;16B", "I;16L", "I"):
    a = np.asarray(im, dtype=np.float64)
    im = Image.fromarray(np.clip(a / 257.0, 0, 255).astype(np.uint8), "L")
  if im.mode == "P" and "transparency" in im.info:
    im = im.convert("RGBA")
  return im.convert("RGB")


def is_grey(rgb: np.ndarray, tolerance: int = 2) -> bool:
  """True if an 8-bit RGB array carries no colour (all channels equal within `tolerance`)."""
  rgb = rgb.astype(np.int16)
  return bool(np.abs(rgb - rgb[..., :1]).max() <= tolerance)


def resize_crop(im: Image.Image, size: int, rng: np.random.Generator | None,
                crop_scale: float = 1.0) -> np.ndarray:
  """Resize the short side to `size`, then a random (rng given) or centre square crop.

  With an rng and `crop_scale` < 1 (training), a square of side s × the short side, s uniform
  in [crop_scale, 1], is first cut at a random position: a random zoom-in, so that a few
  images give many different views (no extra draws at 1, so runs without it are unchanged).
  """
  if rng is not None and crop_scale < 1:
    w, h = im.size
    side = max(2, round(min(w, h) * float(rng.uniform(crop_scale, 1.0))))
    x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
    im = im.crop((x, y, x + side, y + side))
  w, h = im.size
  scale = size / min(w, h)
  nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
  im = im.resize((nw, nh), Image.BICUBIC, reducing_gap=3.0)
  if rng is None:
    x, y = (nw - size) // 2, (nh - size) // 2
  else:
    x, y = int(rng.integers(0, nw - size + 1)), int(rng.integers(0, nh - size + 1))
  return np.asarray(im.crop((x, y, x + size, y + size)), dtype=np.uint8)


def load_rgb(record, size: int, rng: np.random.Generator | None = None,
             crop_scale: float = 1.0) -> np.ndarray:
  """uint8 RGB [size, size, 3] for a record; random crop (`resize_crop`'s `crop_scale`; the
  built-in domains draw their own) + flip when `rng` is given."""
  kind = record[0]
  if kind == "builtin":
    rgb = _builtin(record, size)
  elif kind == "file":
    # Decoded large enough that the smallest crop is still `size` px.
    rgb = resize_crop(open_rgb(record[1], int(np.ceil(size / crop_scale))), size, rng, crop_scale)
  elif kind == "tfds":
    rgb = resize_crop(to_rgb(Image.fromarray(tfds_source.load(record))), size, rng, crop_scale)
  else:
    raise BadImage(f"{record!r}: unknown record kind")
  if rng is not None and rng.random() < 0.5:
    rgb = rgb[:, ::-1]
  return np.ascontiguousarray(rgb)


def rgb_to_example(rgb: np.ndarray) -> dict:
  """uint8 RGB → {"L": [H,W,1], "ab": [H,W,2]} float32 in [-1, 1] (L/50 − 1, ab/110)."""
  lab = color.rgb_to_lab(rgb.astype(np.float32) / 255.0)
  L, ab = color.normalize_l(lab[..., :1]), color.normalize_ab(lab[..., 1:])
  return {"L": L.astype(np.float32), "ab": np.clip(ab, -1, 1).astype(np.float32)}


def load_example(record, size: int, rng: np.random.Generator | None = None,
                 skip_grey: bool = False, crop_scale: float = 1.0) -> dict:
  """A training/eval example for `record`, or {"bad": reason} (never raises for bad files)."""
  try:
    rgb = load_rgb(record, size, rng, crop_scale)
  except BadImage as e:
    return {"bad": str(e), "grey": False}
  if skip_grey and is_grey(rgb):
    return {"bad": f"{record[1]}: greyscale image (no colour to learn)", "grey": True}
  return rgb_to_example(rgb)


SCAN_CACHE = "data_scan.json"   # in a run's workdir: scan_files's answers per file


def check_file(path: str, min_size: int) -> tuple[str, str]:
  """("ok" | "bad" | "grey", reason) for one image file; reason is '<file>: <why>' or ''."""
  try:
    im = open_rgb(path, min_size)
  except BadImage as e:
    return "bad", str(e)
  if is_grey(np.asarray(im)):
    return "grey", f"{path}: greyscale image (no colour to learn)"
  return "ok", ""


def _stat_key(path: str) -> list | None:
  try:
    st = os.stat(path)
  except OSError:               # broken link, no permission on the directory: never cached
    return None
  return [st.st_mtime_ns, st.st_size]


def scan_files(paths: Sequence[str], min_size: int, cache_path: str | None = None,
               threads: int | None = None) -> dict[str, tuple[str, str]]:
  """Decode every file once: {path: (status, reason)} as `check_file`, in `paths` order.

  Results are cached in the JSON file `cache_path` keyed by path, mtime and size, so a
  resumed run does not decode its data set again; a changed file is checked afresh.
  PIL decodes outside the GIL, so a thread pool scales over the cores.
  """
  cache = {}
  if cache_path and os.path.exists(cache_path):
    try:
      with open(cache_path) as f:
        stored = json.load(f)
      if stored.get("version") == _SCAN_VERSION and stored.get("min_size") == min_size:
        cache = stored["files"]
    except (OSError, ValueError, KeyError, AttributeError):
      cache = {}                # unreadable cache: rescan
  keys = {p: _stat_key(p) for p in paths}
  todo = [p for p in paths if keys[p] is None or cache.get(p, [None])[0] != keys[p]]
  fresh = {}
  if todo:
    threads = threads or min(8, os.cpu_count() or 1)
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
      fresh = dict(zip(todo, pool.map(functools.partial(check_file, min_size=min_size), todo)))
  out = {}
  for p in paths:
    out[p] = tuple(fresh[p]) if p in fresh else tuple(cache[p][1])
  if cache_path and fresh:
    files = {**cache, **{p: [keys[p], list(fresh[p])] for p in fresh if keys[p] is not None}}
    # Host and pid: the processes of a multi-host run may share this directory.
    tmp = f"{cache_path}.tmp-{os.uname().nodename}-{os.getpid()}"
    with open(tmp, "w") as f:
      json.dump({"version": _SCAN_VERSION, "min_size": min_size, "files": files}, f)
    os.replace(tmp, cache_path)   # atomic: a kill never leaves a half-written cache
  return out


_SCAN_VERSION = 1
