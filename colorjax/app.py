"""The local web app: colorize, steer with clicks, compare a study's models (`--mode=serve`).

  python launch.py --mode=serve --workdir=RUN_OR_STUDY_DIR [--port=7860] [--host=127.0.0.1]

FastAPI + uvicorn serve ONE static page (`colorjax/static/index.html`, plain HTML/JS: no build
step, no CDN, no web fonts). Its Content-Security-Policy allows this origin only, so the page
works offline by construction. (Gradio would also run offline, but it is a far larger
dependency, its image widget does not give a colour picker + click-to-hint + before/after
slider in one view, and its assets are not ours to audit; the page here is ~500 lines.)

HTTP API. Every request carries the image's bytes as the request body; for images the server
keeps no per-user state and writes no files (a video job writes its upload and output to a
private temp dir, removed when the result is fetched, on failure, after JOB_TTL and at
shutdown); it never reads a path sent by a client:
  GET  /                   the page
  GET  /api/models         the models ({name, path, step, config, takes_hints}) and the limits
  POST /api/preview?kind=grey|original     → PNG: the input's L* as grey, or the upright original
  POST /api/colorize?model=NAME&saturation=S&patch=P&hints=JSON     → PNG at full resolution
       hints: JSON [[x, y, "#rrggbb"], ...] in the image's pixel coordinates (after EXIF
       orientation); response headers X-Model, X-Checkpoint-Step, X-Seconds (decode + model on
       the device thread), X-Queued-Seconds (waiting for it)
  POST /api/video?model=NAME&saturation=S&temporal=T&hints=JSON   (the `video` extra)
       → {"job", "state", "done", "total"}: a short video, coloured on the device queue by
       colorjax.video.colorize_video; GET /api/jobs/ID (progress in frames), GET
       /api/jobs/ID/result (the MP4, once; then its temp files are removed), DELETE /api/jobs/ID
  GET  /api/queue          {"queued": requests waiting for or using the device}
Errors are JSON {"error": "<one line>"}: 400 unreadable, 413 too large (bytes or pixels,
decompression bombs included), 415 not an accepted image type (checked by content, with PIL),
422 bad parameter, 500 anything else (one line; the traceback goes to the server's log only).

Each request: the upload's header is checked (type, pixel count) before it queues; then on ONE
worker thread (a FIFO queue: requests are serialised on the one device, none is dropped) it is
decoded, prepared and goes through `Colorizer.predict`; the full-resolution `Colorizer.render`
and the PNG encoding run outside that queue, at most HOST_JOBS at a time, overlapping the
next request's model call. Memory stays bounded: queued requests hold only their bytes.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import importlib.resources
import inspect
import io
import json
import logging
import math
import os
import re
import socket
import struct
import threading
import time
import warnings
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from colorjax import color, config_lib, inference, study

import fastapi                      # the `app` extra (colorjax.cli names it when missing)
import uvicorn
from fastapi import responses

MAX_BYTES = 32 << 20                # upload size limit (bytes)
MAX_PIXELS = 24_000_000             # decoded size limit (px): ~6000×4000
MAX_HINTS = 256
HOST_JOBS = 2                       # full-resolution decode/render/encode jobs at once
MAX_VIDEO_BYTES = 64 << 20          # video upload size limit (bytes)
MAX_VIDEO_FRAMES = 900              # e.g. 30 s at 30 fps: "a short video"
MAX_VIDEO_PIXELS = 4096 * 2160      # per frame
MAX_VIDEO_JOBS = 4                  # video jobs alive at once (queued, running or unfetched)
JOB_TTL = 600                       # s: a finished job's result is dropped if not fetched
FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")    # PIL decoders tried on uploads
LOOPBACK = ("127.0.0.1", "localhost", "::1")
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' blob: data:; connect-src 'self'; form-action 'none'; "
        "frame-ancestors 'none'; base-uri 'none'")
log = logging.getLogger("colorjax.app")


class RequestError(Exception):
  """A request the server refuses: HTTP status and a one-line message for the page."""

  def __init__(self, status: int, message: str):
    super().__init__(message)
    self.status = status


@dataclasses.dataclass
class Model:
  name: str
  colorizer: inference.Colorizer
  info: dict                        # checkpoint_info: path, step, config, takes_hints


# ---------------------------------------------------------------------------------------------
# Models


def find_runs(workdir: str) -> dict[str, str]:
  """{model name: run dir}: one run directory, or a study's cartoon/ movie/ mixed/ runs."""
  if not os.path.isdir(workdir):
    raise config_lib.ConfigError(f"--workdir={workdir}: no such directory")
  if os.path.isdir(os.path.join(workdir, "checkpoints")):
    return {os.path.basename(os.path.abspath(workdir)) or "model": workdir}
  runs = {m: os.path.join(workdir, m) for m in study.MODELS
          if os.path.isdir(os.path.join(workdir, m, "checkpoints"))}
  if not runs:
    raise config_lib.ConfigError(
        f"--workdir={workdir}: neither a run directory (no checkpoints/ inside) nor a study "
        f"directory (no {', '.join(m + '/' for m in study.MODELS)} runs inside)")
  return runs


def _takes_arg(fn, name: str) -> bool:
  return name in inspect.signature(fn).parameters


def checkpoint_info(colorizer) -> dict:
  """What the page shows about a model (Colorizer.checkpoint_info, JSON-safe): path, step,
  config name, takes_hints (trained with hint channels; hints work on every model anyway)."""
  return {k: (v if isinstance(v, (bool, int, float, str, type(None))) else str(v))
          for k, v in colorizer.checkpoint_info.items()}


def load_models(workdir: str, step: int | None = None) -> dict[str, Model]:
  """Load every model of a run or study directory (CheckpointError if one cannot be read)."""
  models = {}
  for name, run_dir in find_runs(workdir).items():
    colorizer = inference.load(run_dir, step=step)
    models[name] = Model(name, colorizer, checkpoint_info(colorizer))
  return models


# ---------------------------------------------------------------------------------------------
# Uploads


@contextlib.contextmanager
def _decoding(max_pixels: int):
  """Map PIL's failures on uploaded bytes to RequestError (one line each)."""
  try:
    with warnings.catch_warnings():
      warnings.simplefilter("error", Image.DecompressionBombWarning)
      yield
  except (Image.DecompressionBombError, Image.DecompressionBombWarning):
    raise RequestError(413, f"image too large: its header declares more pixels than the "
                            f"limit of {max_pixels / 1e6:.1f} Mpx (a decompression bomb?)") from None
  except Image.UnidentifiedImageError:
    raise RequestError(415, f"not an image: expected {', '.join(FORMATS)} "
                            f"(checked by content, not by file name)") from None
  except (OSError, SyntaxError, ValueError, EOFError, struct.error, MemoryError) as e:
    reason = str(e).splitlines()[0] if str(e) else type(e).__name__
    raise RequestError(400, f"cannot decode the image ({reason})") from None


def _open(data: bytes, max_pixels: int) -> Image.Image:
  """PIL's lazy image for uploaded bytes (header read, nothing decompressed), size checked."""
  if not data:
    raise RequestError(400, "empty upload (0 bytes)")
  im = Image.open(io.BytesIO(data), formats=FORMATS)
  w, h = im.size
  if w * h > max_pixels:
    raise RequestError(413, f"image too large: {w}×{h} px = {w * h / 1e6:.1f} Mpx "
                            f"(the limit is {max_pixels / 1e6:.1f} Mpx)")
  if min(w, h) < inference.MIN_SIDE:
    raise RequestError(400, f"image too small: {w}×{h} px "
                            f"(need at least {inference.MIN_SIDE} px per side)")
  return im


def check_upload(data: bytes, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
  """The upright (EXIF-oriented) size (w, h) of uploaded bytes, from the header alone.

  Refuses (RequestError) what `decode_upload` would refuse before decompressing: not one of
  FORMATS by content, too many pixels (decompression bombs included), too small.
  """
  with _decoding(max_pixels):
    im = _open(data, max_pixels)
    w, h = im.size
    return (h, w) if im.getexif().get(0x0112, 1) in (5, 6, 7, 8) else (w, h)


def decode_upload(data: bytes, max_pixels: int = MAX_PIXELS) -> Image.Image:
  """Image bytes → an upright, loaded PIL image; RequestError with a one-line reason.

  The type is decided by content (PIL's decoders for FORMATS), never by a name. The pixel
  count is checked from the header, before anything is decompressed.
  """
  with _decoding(max_pixels):
    im = ImageOps.exif_transpose(_open(data, max_pixels))
    im.load()
  return im


def _display_rgb(im: Image.Image) -> np.ndarray:
  """The image as 8-bit RGB(A) for display."""
  if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
    a = inference.pil_to_array(im)
    a = np.clip(a * 255.0, 0, 255) if a.dtype == np.float32 else a / 257.0
    return np.round(a).astype(np.uint8)
  has_alpha = "A" in im.getbands() or "transparency" in im.info
  return np.asarray(im.convert("RGBA" if has_alpha else "RGB"))


def is_colour(rgb: np.ndarray) -> bool:
  return rgb.ndim == 3 and not (np.array_equal(rgb[..., 0], rgb[..., 1])
                                and np.array_equal(rgb[..., 1], rgb[..., 2]))


def encode_png(rgb: np.ndarray) -> bytes:
  buf = io.BytesIO()
  Image.fromarray(rgb).save(buf, format="PNG", compress_level=1)   # speed over size: local
  return buf.getvalue()


def parse_hints(text: str | None, width: int, height: int) -> list[tuple[float, float, str]]:
  """The `hints` query parameter → [(x, y, "#rrggbb")], checked against the image size."""
  if not text:
    return []
  try:
    raw = json.loads(text)
  except ValueError:
    raise RequestError(422, "hints: not valid JSON (expected [[x, y, \"#rrggbb\"], ...])") from None
  if not isinstance(raw, list):
    raise RequestError(422, "hints: expected a list [[x, y, \"#rrggbb\"], ...]")
  if len(raw) > MAX_HINTS:
    raise RequestError(422, f"hints: {len(raw)} given, at most {MAX_HINTS}")
  hints = []
  for i, h in enumerate(raw):
    ok = (isinstance(h, list) and len(h) == 3 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        for v in h[:2]) and isinstance(h[2], str) and _COLOUR.match(h[2]))
    if not ok:
      raise RequestError(422, f"hints[{i}]: expected [x, y, \"#rrggbb\"], got {json.dumps(h)[:80]}")
    x, y = float(h[0]), float(h[1])
    if not (-0.5 <= x < width - 0.5 and -0.5 <= y < height - 0.5):
      raise RequestError(422, f"hints[{i}]: point ({x:g}, {y:g}) is outside the "
                              f"{width}×{height} image")
    hints.append((x, y, h[2].lower()))
  return hints


def _number(name: str, text: str | None, default, lo: float, hi: float, kind=float):
  if text is None or text == "":
    return default
  try:
    value = kind(text)
  except ValueError:
    raise RequestError(422, f"{name}={text[:40]!r}: not a number") from None
  if not (lo <= value <= hi):
    raise RequestError(422, f"{name}={value:g}: must be in [{lo:g}, {hi:g}]")
  return value


async def read_body(request: fastapi.Request, max_bytes: int) -> bytes:
  """The request body, refused (413) as soon as it exceeds `max_bytes`; kept in memory."""
  declared = request.headers.get("content-length")
  limit = f"the limit is {max_bytes / 2**20:.0f} MiB"
  if declared and declared.isdigit() and int(declared) > max_bytes:
    raise RequestError(413, f"file too large: {int(declared) / 2**20:.1f} MiB ({limit})")
  chunks, size = [], 0
  async for chunk in request.stream():
    size += len(chunk)
    if size > max_bytes:
      raise RequestError(413, f"file too large: over {max_bytes / 2**20:.0f} MiB ({limit})")
    chunks.append(chunk)
  return b"".join(chunks)


# ---------------------------------------------------------------------------------------------
# The device queue


class DeviceQueue:
  """One worker thread runs every model call in arrival order (the one device, serialised)."""

  def __init__(self):
    self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="colorjax-device")
    self._lock = threading.Lock()
    self.queued = 0                   # submitted and not finished
    self.peak = 0                     # the most ever queued at once
    self.done = 0

  async def run(self, fn, *args, **kwargs):
    with self._lock:
      self.queued += 1
      self.peak = max(self.peak, self.queued)
    try:
      return await asyncio.wrap_future(self._pool.submit(fn, *args, **kwargs))
    finally:
      with self._lock:
        self.queued -= 1
        self.done += 1

  def close(self):
    self._pool.shutdown(wait=False, cancel_futures=True)


def predict(model: Model, data: bytes, hints: list, patch: int | None, max_pixels: int):
  """Decode, prepare and run the model (on the device thread: one full-size image in memory at
  a time). Returns (Prepared, a*b* at the render bucket, seconds)."""
  t0 = time.perf_counter()
  prepared = inference.prepare(decode_upload(data, max_pixels))
  kwargs = {"hints": [hints]} if hints else {}
  if hints and patch is not None and _takes_arg(model.colorizer.predict, "patch"):
    kwargs["patch"] = patch
  ab = model.colorizer.predict([prepared], batch_size=1, **kwargs)[0]
  return prepared, ab, time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------
# Video jobs (colorjax.video, the `video` extra): upload → job → progress → MP4


def _video_lib():
  try:
    from colorjax import video
    import av  # noqa: F401  (PyAV: the video extra)
    return video
  except ImportError:
    return None


@dataclasses.dataclass
class Job:
  """One video colorization: its private temp dir, progress in frames, then the output."""
  id: str
  model: str
  dir: str
  total: int | None = None
  done: int = 0
  state: str = "queued"               # queued, running, done, error
  error: str | None = None
  output: str | None = None
  seconds: float | None = None
  finished: float | None = None       # time.monotonic() when done or failed
  task: Any = None                    # the asyncio task running it
  cancelled: bool = False

  def public(self) -> dict:
    return {"job": self.id, "model": self.model, "state": self.state, "done": self.done,
            "total": self.total, "error": self.error, "seconds": self.seconds}


class _CountingColorizer:
  """The model's Colorizer, counting rendered frames into a Job (one render per frame) and
  stopping a video that turns out longer than MAX_VIDEO_FRAMES."""

  def __init__(self, colorizer, job: Job, max_frames: int):
    self._colorizer, self._job, self._max = colorizer, job, max_frames

  def __getattr__(self, name):
    return getattr(self._colorizer, name)

  def render(self, *args, **kwargs):
    if self._job.cancelled:
      raise RequestError(409, "cancelled")
    if self._job.done >= self._max:
      raise RequestError(413, f"video too long: over {self._max} frames")
    out = self._colorizer.render(*args, **kwargs)
    self._job.done += 1
    return out


class Jobs:
  """The video jobs alive; each owns a temp dir that is removed when its result is fetched, when
  it fails, when it expires (JOB_TTL) and when the server stops."""

  def __init__(self, max_jobs: int = MAX_VIDEO_JOBS):
    self.max_jobs, self._jobs = max_jobs, {}

  def expire(self) -> None:
    now = time.monotonic()
    for job in list(self._jobs.values()):
      if job.finished is not None and now - job.finished > JOB_TTL:
        self.remove(job.id)

  def create(self, model: str) -> Job:
    import secrets
    import tempfile
    self.expire()
    if len(self._jobs) >= self.max_jobs:
      raise RequestError(503, f"busy: {len(self._jobs)} videos are being coloured or waiting "
                              f"to be downloaded; try again later")
    job = Job(secrets.token_hex(8), model, tempfile.mkdtemp(prefix="colorjax-app-"))
    self._jobs[job.id] = job
    return job

  def get(self, job_id: str) -> Job:
    job = self._jobs.get(job_id)
    if job is None:
      raise RequestError(404, "no such video job (finished results are kept until downloaded, "
                              f"at most {JOB_TTL // 60} minutes)")
    return job

  def remove(self, job_id: str) -> None:
    import shutil
    job = self._jobs.pop(job_id, None)
    if job is not None:
      shutil.rmtree(job.dir, ignore_errors=True)

  def close(self) -> None:
    for job_id in list(self._jobs):
      self.remove(job_id)


def colorize_video_job(video, model: Model, job: Job, src: str, temporal: float | None,
                       saturation: float, hints: list, max_frames: int) -> None:
  """Run one video job (on the device thread) with `colorjax.video.colorize_video`."""
  if job.cancelled:
    raise RequestError(409, "cancelled")
  job.state = "running"
  info = video.probe(src)
  dst = os.path.join(job.dir, "colorized.mp4")
  try:
    video.output_container(src, dst, info.audio_codecs)
  except video.VideoError:              # e.g. Opus audio: MKV holds it (the browser may not play it)
    dst = os.path.join(job.dir, "colorized.mkv")
  kwargs = {} if temporal is None else {"temporal_strength": temporal}
  result = video.colorize_video(_CountingColorizer(model.colorizer, job, max_frames), src, dst,
                                saturation=saturation, hints=hints or None, progress=False,
                                **kwargs)
  job.output, job.seconds = result.output, round(result.seconds, 3)


# ---------------------------------------------------------------------------------------------
# The application


def page() -> str:
  return importlib.resources.files("colorjax").joinpath("static/index.html").read_text("utf-8")


def _patch_default(models: dict[str, Model]):
  """The Colorizer's default hint patch size (px), if its predict takes one."""
  for m in models.values():
    param = inspect.signature(m.colorizer.predict).parameters.get("patch")
    if param is not None and isinstance(param.default, (int, float)):
      return param.default
  return None


def create_app(models: dict[str, Model], max_bytes: int = MAX_BYTES,
               max_pixels: int = MAX_PIXELS, allowed_hosts: list[str] | None = None):
  """The FastAPI application serving `models` (name → Model)."""
  from starlette.middleware.trustedhost import TrustedHostMiddleware
  device, jobs, video = DeviceQueue(), Jobs(), _video_lib()

  @contextlib.asynccontextmanager
  async def lifespan(_):
    try:
      yield
    finally:                          # the server stops: no temp dir outlives it
      jobs.close()
      device.close()

  api = fastapi.FastAPI(title="colorjax", docs_url=None, redoc_url=None, openapi_url=None,
                        lifespan=lifespan)
  api.state.device, api.state.jobs = device, jobs
  if allowed_hosts:                   # refuses DNS-rebinding requests to a loopback server
    api.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)
  index = page()
  listing = {"models": [{"name": m.name, **m.info} for m in models.values()],
             "limits": {"bytes": max_bytes, "pixels": max_pixels, "hints": MAX_HINTS},
             "patch_default": _patch_default(models), "video": video is not None,
             "video_limits": {"bytes": MAX_VIDEO_BYTES, "frames": MAX_VIDEO_FRAMES,
                              "pixels": MAX_VIDEO_PIXELS}}

  @api.exception_handler(RequestError)
  async def _refused(request, e: RequestError):
    return responses.JSONResponse({"error": str(e)}, status_code=e.status)

  @api.exception_handler(Exception)
  async def _failed(request, e: Exception):
    log.error("request %s failed", request.url.path, exc_info=e)
    first = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
    return responses.JSONResponse({"error": f"internal error ({type(e).__name__}: {first})"},
                                  status_code=500)

  @api.middleware("http")
  async def _headers(request, call_next):
    response = await call_next(request)
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response

  @api.get("/", response_class=responses.HTMLResponse)
  async def _index():
    return index

  @api.get("/api/models")
  async def _models():
    return listing

  @api.get("/api/queue")
  async def _queue():
    return {"queued": device.queued, "done": device.done}

  host = asyncio.Semaphore(HOST_JOBS)

  def _model_name(model: str) -> str:
    if model in models:
      return model
    if not model and len(models) == 1:
      return next(iter(models))
    raise RequestError(422, f"model={model[:40]!r}: expected one of {', '.join(models)}")

  async def on_host(fn, *args):
    """Full-resolution CPU work (decode, colour conversion, PNG), a few at a time: bounded
    memory whatever the number of requests."""
    async with host:
      return await asyncio.to_thread(fn, *args)

  @api.post("/api/preview")
  async def _preview(request: fastapi.Request, kind: str = "grey"):
    if kind not in ("grey", "original"):
      raise RequestError(422, f"kind={kind[:40]!r}: expected grey or original")
    data = await read_body(request, max_bytes)

    def work():
      im = decode_upload(data, max_pixels)
      rgb = _display_rgb(im)
      if kind == "grey":
        shown = color.linear_to_srgb8(inference.prepare(im).luminance)
      else:
        shown = rgb
      return encode_png(shown), is_colour(rgb[..., :3] if rgb.ndim == 3 else rgb), im.size

    png, colour, (w, h) = await on_host(work)
    return responses.Response(png, media_type="image/png", headers={
        "X-Width": str(w), "X-Height": str(h), "X-Colour": "1" if colour else "0"})

  @api.post("/api/colorize")
  async def _colorize(request: fastapi.Request, model: str = "", saturation: str | None = None,
                      patch: str | None = None, hints: str | None = None):
    model = _model_name(model)
    sat = _number("saturation", saturation, 1.0, 0.0, 4.0)
    size = _number("patch", patch, None, 1, 64, int)
    data = await read_body(request, max_bytes)
    points = parse_hints(hints, *await on_host(check_upload, data, max_pixels))
    t0 = time.perf_counter()
    try:
      prepared, ab, seconds = await device.run(predict, models[model], data, points, size,
                                               max_pixels)
    except ValueError as e:           # the Colorizer's own one-line refusals (e.g. hints)
      raise RequestError(422, str(e).strip().splitlines()[0]) from None
    waited = time.perf_counter() - t0 - seconds

    def finish():
      rgb = models[model].colorizer.render(prepared, ab, sat)
      return encode_png(rgb), rgb.shape

    png, shape = await on_host(finish)
    return responses.Response(png, media_type="image/png", headers={
        "X-Model": model, "X-Checkpoint-Step": str(models[model].info.get("step")),
        "X-Seconds": f"{seconds:.3f}", "X-Queued-Seconds": f"{waited:.3f}",
        "X-Width": str(shape[1]), "X-Height": str(shape[0])})

  @api.post("/api/video")
  async def _video(request: fastapi.Request, model: str = "", saturation: str | None = None,
                   temporal: str | None = None, hints: str | None = None):
    if video is None:
      raise RequestError(501, "video needs the video extra: pip install -e '.[video]'")
    name = _model_name(model)
    sat = _number("saturation", saturation, 1.0, 0.0, 4.0)
    strength = _number("temporal", temporal, None, 0.0, 1.0)
    data = await read_body(request, MAX_VIDEO_BYTES)
    if not data:
      raise RequestError(400, "empty upload (0 bytes)")
    job = jobs.create(name)
    try:
      src = os.path.join(job.dir, "upload")      # our name; the type comes from the content
      with open(src, "wb") as f:
        f.write(data)
      del data
      try:
        info = await on_host(video.probe, src)
      except video.VideoError as e:
        raise RequestError(415, "not a video FFmpeg can read" + (
            f" ({str(e).split(': ', 1)[1]})" if ": " in str(e) else "")) from None
      if info.width * info.height > MAX_VIDEO_PIXELS:
        raise RequestError(413, f"video frames too large: {info.width}×{info.height} px (the "
                                f"limit is {MAX_VIDEO_PIXELS / 1e6:.1f} Mpx)")
      if info.frames and info.frames > MAX_VIDEO_FRAMES:
        raise RequestError(413, f"video too long: {info.frames} frames (the limit is "
                                f"{MAX_VIDEO_FRAMES})")
      points = parse_hints(hints, info.width, info.height)
    except BaseException:
      jobs.remove(job.id)
      raise
    job.total = info.frames

    async def run():
      try:
        await device.run(colorize_video_job, video, models[name], job, src, strength, sat,
                         points, MAX_VIDEO_FRAMES)
        job.state = "done"
      except Exception as e:         # the message goes to the page; the files go away
        if not isinstance(e, (RequestError, ValueError, video.VideoError)):
          log.error("video job %s failed", job.id, exc_info=e)
        job.state, job.error = "error", (str(e).strip().splitlines() or [type(e).__name__])[0]
        import shutil
        shutil.rmtree(job.dir, ignore_errors=True)
      finally:
        job.finished = time.monotonic()
        if job.cancelled:
          jobs.remove(job.id)

    job.task = asyncio.get_running_loop().create_task(run())     # referenced: not collected
    return job.public()

  @api.get("/api/jobs/{job_id}")
  async def _job(job_id: str):
    jobs.expire()
    return jobs.get(job_id).public()

  @api.delete("/api/jobs/{job_id}")
  async def _cancel(job_id: str):
    """Cancel a job (it stops at its next frame) or drop a finished one; its files go away."""
    job = jobs.get(job_id)
    job.cancelled = True
    if job.finished is not None:
      jobs.remove(job.id)
    return {"job": job.id, "cancelled": True}

  @api.get("/api/jobs/{job_id}/result")
  async def _job_result(job_id: str):
    job = jobs.get(job_id)
    if job.state != "done":
      raise RequestError(409, f"the video is not ready ({job.state}"
                              f"{': ' + job.error if job.error else ''})")
    with open(job.output, "rb") as f:        # small (a short video); then the files go away
      data = f.read()
    kind = "video/mp4" if job.output.endswith(".mp4") else "video/x-matroska"
    jobs.remove(job.id)
    return responses.Response(data, media_type=kind, headers={
        "X-Model": job.model, "X-Checkpoint-Step": str(models[job.model].info.get("step")),
        "X-Frames": str(job.done), "X-Seconds": str(job.seconds)})

  return api


# ---------------------------------------------------------------------------------------------
# The serve command


def listen(host: str, port: int) -> socket.socket:
  """A listening TCP socket on host:port (port 0: a free one); ConfigError if impossible."""
  try:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
  except socket.gaierror as e:
    raise config_lib.ConfigError(f"--host={host}: cannot resolve ({e.strerror})") from None
  family, _, _, _, address = infos[0]
  sock = socket.socket(family, socket.SOCK_STREAM)
  try:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    sock.listen(128)
  except OSError as e:
    sock.close()
    raise config_lib.ConfigError(f"--port={port}: cannot listen on {host}:{port} "
                                 f"({e.strerror or e})") from None
  return sock


def url_of(sock: socket.socket) -> str:
  host, port = sock.getsockname()[:2]
  return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"


@contextlib.contextmanager
def running(api, host: str = "127.0.0.1", port: int = 0):
  """Serve `api` with uvicorn in a background thread (e.g. from a notebook or a test); yields
  its URL and stops the server on exit. Port 0: any free port."""
  sock = listen(host, port)
  server = uvicorn.Server(uvicorn.Config(api, log_level="warning", access_log=False))
  thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
  thread.start()
  deadline = time.monotonic() + 60
  while not server.started:
    if time.monotonic() > deadline or not thread.is_alive():
      sock.close()
      raise RuntimeError("the uvicorn server did not start")
    time.sleep(0.02)
  try:
    yield url_of(sock)
  finally:
    server.should_exit = True
    thread.join(60)
    sock.close()


@contextlib.contextmanager
def _quiet_absl():
  """orbax's read-only warnings (one pair per model) would bury the URL line."""
  from absl import logging as absl_logging
  level = absl_logging.get_verbosity()
  absl_logging.set_verbosity(absl_logging.ERROR)
  try:
    yield
  finally:
    absl_logging.set_verbosity(level)


def serve(workdir: str, host: str = "127.0.0.1", port: int = 7860,
          step: int | None = None) -> int:
  """The `--mode=serve` command: load the model(s), print the URL, serve until Ctrl+C."""
  if not 0 <= port <= 65535:
    raise config_lib.ConfigError(f"--port={port}: must be in 0..65535 (0: any free port)")
  find_runs(workdir)                  # a wrong --workdir fails before anything is bound
  sock = listen(host, port)
  try:
    with _quiet_absl():
      models = load_models(workdir, step)
  except BaseException:
    sock.close()
    raise
  hosts = None
  if host in LOOPBACK:
    hosts = ["127.0.0.1", "localhost", "[::1]", "::1"]
  api = create_app(models, allowed_hosts=hosts)
  names = ", ".join(f"{m.name} (step {m.info.get('step')})" for m in models.values())
  print(f"colorjax app: {url_of(sock)}  models: {names}  (Ctrl+C to stop)", flush=True)
  config = uvicorn.Config(api, log_level="warning", access_log=False)
  try:
    uvicorn.Server(config).run(sockets=[sock])
  except KeyboardInterrupt:           # uvicorn re-raises Ctrl+C after its clean shutdown
    print("colorjax app: stopped", flush=True)
  finally:
    api.state.device.close()
    sock.close()
  return 0
