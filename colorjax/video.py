"""Footage in, footage out: video files and numbered-frame folders through a `Colorizer`.

  python launch.py --mode=colorize --workdir=runs/demo --input=clip.mp4 --output=out/
  colorizer.video("clip.mp4", "clip_colour.mkv", temporal=0.8)      # the same, in Python

What a video keeps (PyAV, FFmpeg inside its wheel; nothing is downloaded):
* size, frame count and every frame's timestamp (so the exact rational frame rate, the duration
  and even a variable frame rate), copied from the input frame by frame;
* the audio streams, remuxed packet by packet (never re-encoded); the output container follows
  the input's, or `--output`'s extension if it can hold the audio (Vorbis/Opus: WebM or MKV);
* rotation metadata: *kept* — frames are colorized as stored and the output carries the same
  display rotation, so players show it the way they showed the input.
The video is re-encoded: H.264 (x264, CRF 18) in MP4/MOV/MKV/AVI, VP8 in WebM; 4:2:0 chroma, or
4:4:4 when a side is odd (4:2:0 cannot hold an odd size exactly).

How frames are coloured: each frame is reduced to its L* (`inference.prepare`), shot cuts are
found (`temporal.CutDetector`, which answers 2 frames late), frames go through
`Colorizer.predict` in batches, then, in order, `temporal.Stabilizer` carries colour along the
optical flow within each shot, and `Colorizer.render` makes the full-resolution frame. Memory is
bounded by the batch: nothing else is kept. Hints (a model that takes them) are given to the
first frame of every shot and travel with the colour it carries.

The output is written under a partial name (`NAME.partial.EXT`, or `NAME.partial.png` for frame
files) and renamed when complete; Ctrl-C leaves the partial file there and says so. The cut
list is written beside the output as `<output>.cuts.json`.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import os
import re
import sys
import time
from fractions import Fraction
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from colorjax import temporal

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v")
# Audio codecs each output container holds (stream copy). MKV holds anything FFmpeg muxes.
AUDIO_IN = {
    ".mp4": {"aac", "mp3", "ac3", "eac3", "alac", "flac"},
    ".m4v": {"aac", "mp3", "ac3", "eac3", "alac"},
    ".mov": {"aac", "mp3", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s24le", "pcm_f32le"},
    ".webm": {"vorbis", "opus"},
    ".avi": {"mp3", "ac3", "pcm_s16le", "pcm_u8", "aac"},
    ".mkv": None,
}
FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm",
           ".avi": "avi"}
X264 = {"crf": "18", "preset": "fast"}
VP8 = {"crf": "8", "b": "8M", "deadline": "good", "cpu-used": "4"}
DEFAULT_BATCH = 8
_NUMBERED = re.compile(r"^(.*?)(\d+)$")
# Besides images: extensions naming a file colorjax does not write as video; an --output
# with one is a mistake, not a folder.
_OTHER_FILE_EXTS = (".gif", ".json", ".txt", ".mpg", ".mpeg", ".wmv", ".flv", ".ogv", ".3gp")


class VideoError(Exception):
  """A video or frame sequence that cannot be used or written; str(e) is '<file>: <reason>'."""


# ---------------------------------------------------------------------------------------------
# What an input is


def is_video_file(path: str) -> bool:
  return os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS


def numbered_frames(folder: str) -> list[str] | None:
  """The frame files of a folder of numbered frames, in numeric order; None if it is not one.

  A frame folder: at least 2 image files directly inside, no sub-folders with images, every
  name `PREFIX<digits>.EXT` with one PREFIX and one EXT (e.g. frame_0001.png ...), all of one
  size: numbered photos of several sizes (IMG_0001.jpg ..., kodim01.png ...) are images.
  """
  from colorjax.data import sources
  if not os.path.isdir(folder):
    return None
  files = sources.list_images(folder)
  if len(files) < 2 or any(os.path.dirname(f) != folder.rstrip(os.sep) and
                           os.path.dirname(os.path.abspath(f)) != os.path.abspath(folder)
                           for f in files):
    return None
  keys = set()
  numbered = []
  for f in files:
    stem, ext = os.path.splitext(os.path.basename(f))
    m = _NUMBERED.match(stem)
    if not m:
      return None
    keys.add((m.group(1), ext.lower()))
    numbered.append((int(m.group(2)), f))
  if len(keys) != 1 or len({s for s in map(_display_size, files) if s}) > 1:
    return None
  return [f for _, f in sorted(numbered)]


def _display_size(path: str) -> tuple[int, int] | None:
  """(width, height) after EXIF orientation, from the file's header; None if unreadable (a
  broken frame is reported when the sequence is read)."""
  from PIL import Image
  try:
    with Image.open(path) as im:
      w, h = im.size
      turned = im.getexif().get(0x0112, 1) in (5, 6, 7, 8)     # EXIF Orientation
  except Exception:       # PIL raises many types for unreadable files
    return None
  return (h, w) if turned else (w, h)


def is_footage(path: str) -> bool:
  """A video file (by extension) or a folder of numbered frames."""
  return is_video_file(path) or numbered_frames(path) is not None


# ---------------------------------------------------------------------------------------------
# Reading


@dataclasses.dataclass
class Frame:
  """One decoded frame: RGB pixels and its timing (pts in `time_base` units; None for files)."""
  index: int
  rgb: np.ndarray
  pts: int | None = None
  name: str | None = None


@dataclasses.dataclass
class VideoInfo:
  path: str
  width: int
  height: int
  rate: Fraction | None          # average frame rate (exact rational)
  time_base: Fraction | None
  frames: int | None             # from the container, when it says
  rotation: int                  # display rotation, degrees counter-clockwise
  audio_codecs: list[str]


def _av_reason(e: Exception) -> str:
  text = " ".join(str(e).split())
  return text[:200] or type(e).__name__


def probe(path: str) -> VideoInfo:
  """Open a video and describe it, or raise VideoError('<path>: <reason>')."""
  import av
  if not os.path.exists(path):
    raise VideoError(f"{path}: no such file")
  if os.path.getsize(path) == 0:
    raise VideoError(f"{path}: empty file (0 bytes)")
  try:
    with av.open(path) as c:
      if not c.streams.video:
        raise VideoError(f"{path}: no video stream (streams: "
                         f"{', '.join(s.type for s in c.streams) or 'none'})")
      s = c.streams.video[0]
      if not s.width or not s.height:
        raise VideoError(f"{path}: video stream has no frame size")
      rate = s.average_rate or s.guessed_rate
      rotation = 0
      for frame in c.decode(s):
        rotation = int(round(frame.rotation or 0))
        break
      else:
        raise VideoError(f"{path}: the video stream has 0 frames")
      return VideoInfo(path, s.width, s.height, Fraction(rate) if rate else None,
                       Fraction(s.time_base) if s.time_base else None, s.frames or None,
                       rotation, [a.codec_context.name for a in c.streams.audio])
  except VideoError:
    raise
  except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as e:
    raise VideoError(f"{path}: not a readable video ({_av_reason(e)})") from None


def read_video(path: str) -> Iterator[Frame]:
  """Decoded frames of a video's first video stream, RGB uint8, with their timestamps."""
  import av
  count, first, last = 0, None, None
  try:
    with av.open(path) as c:
      s = c.streams.video[0]
      s.thread_type = "AUTO"
      expected, declared, tb = s.frames or None, s.duration, s.time_base
      rate = s.average_rate or s.guessed_rate
      for f in c.decode(s):
        yield Frame(count, f.to_ndarray(format="rgb24"), f.pts)
        first = f.pts if first is None else first
        last = f.pts
        count += 1
  except av.error.FFmpegError as e:
    raise VideoError(f"{path}: corrupt or truncated video after frame {count} "
                     f"({_av_reason(e)})") from None
  if count == 0:
    raise VideoError(f"{path}: the video stream has 0 frames")
  if expected and count < expected:
    raise VideoError(f"{path}: truncated: decoded {count} of the {expected} frames it declares")
  if declared and tb and rate and last is not None and first is not None:
    # The stream's declared duration against the frames decoded (2 frames of slack).
    if float((declared - (last - first)) * tb) > 3 / float(rate):
      raise VideoError(f"{path}: truncated: frames end at {float((last - first) * tb):.2f} s "
                       f"of the {float(declared * tb):.2f} s the stream declares")


def read_frames(files: Sequence[str]) -> Iterator[Frame]:
  """Frames of a numbered-frame folder (RGB uint8; EXIF orientation applied)."""
  from colorjax import inference
  from colorjax.data import decode
  size = None
  for i, f in enumerate(files):
    try:
      rgb = inference.pil_to_array(inference.open_image(f).convert("RGB"))
    except decode.BadImage as e:
      raise VideoError(str(e)) from None
    if size is not None and rgb.shape[:2] != size:
      raise VideoError(f"{f}: frame size {rgb.shape[1]}×{rgb.shape[0]} differs from the first "
                       f"frame's {size[1]}×{size[0]}")
    size = rgb.shape[:2]
    yield Frame(i, rgb, name=f)


# ---------------------------------------------------------------------------------------------
# Writing


def output_container(src: str, dst: str, audio_codecs: Sequence[str]) -> str:
  """Check that `dst`'s container can hold the input's audio; returns its extension."""
  ext = os.path.splitext(dst)[1].lower()
  if ext not in FORMATS:
    raise VideoError(f"{dst}: unknown video container {ext or '(no extension)'}; expected "
                     f"{', '.join(VIDEO_EXTENSIONS)}")
  allowed = AUDIO_IN[ext]
  bad = [a for a in audio_codecs if allowed is not None and a not in allowed]
  if bad:
    fits = ".mkv or .webm" if set(bad) <= {"vorbis", "opus"} else ".mkv"
    raise VideoError(f"{dst}: a {ext} file cannot hold the {', '.join(sorted(set(bad)))} audio of "
                     f"{src} (copied without re-encoding); write {fits} instead")
  return ext


def check_frame_size(dst: str, info: VideoInfo) -> None:
  """VP8 (WebM) holds 4:2:0 only, so no odd frame size; the other containers get 4:4:4."""
  if os.path.splitext(dst)[1].lower() == ".webm" and (info.width % 2 or info.height % 2):
    raise VideoError(f"{dst}: VP8 (WebM) cannot hold an odd frame size "
                     f"{info.width}×{info.height}; write .mkv or .mp4 instead")


def partial_name(dst: str) -> str:
  """Where `dst` is written until it is complete: NAME.partial.EXT."""
  stem, ext = os.path.splitext(dst)
  return f"{stem}.partial{ext}"


class VideoWriter:
  """Encodes RGB frames with the input's timestamps, copies the input's audio packets."""

  def __init__(self, src: str, path: str, info: VideoInfo):
    import av
    ext = os.path.splitext(path)[1].lower()
    self._in = av.open(src)
    self._out = av.open(path, "w", format=FORMATS[ext])
    s_in = self._in.streams.video[0]
    codec = "libvpx" if ext == ".webm" else "libx264"
    rate = info.rate or Fraction(24)
    self.video = self._out.add_stream(codec, rate=rate)
    self.video.width, self.video.height = info.width, info.height
    check_frame_size(path, info)
    odd = info.width % 2 or info.height % 2
    self.video.pix_fmt = "yuv444p" if odd and codec == "libx264" else "yuv420p"
    self.video.time_base = s_in.time_base
    self.video.codec_context.time_base = s_in.time_base
    self.video.options = dict(X264 if codec == "libx264" else VP8)
    if info.rotation:
      self.video.set_display_rotation(info.rotation)
    self._audio = {a.index: self._out.add_stream_from_template(a) for a in self._in.streams.audio}
    self._audio_packets = self._in.demux(*self._in.streams.audio) if self._audio else iter(())
    self._audio_done = not self._audio
    self.audio_packets = 0
    self._time_base = s_in.time_base
    self._last_pts: int | None = None

  def _mux_audio_until(self, seconds: float | None) -> None:
    """Copy audio packets up to `seconds` (all if None), keeping the file interleaved."""
    while not self._audio_done:
      packet = next(self._audio_packets, None)
      if packet is None:
        self._audio_done = True
        break
      if packet.dts is None:            # the demuxer's flush packet
        continue
      packet.stream = self._audio[packet.stream_index if hasattr(packet, "stream_index")
                                  else packet.stream.index]
      self._out.mux(packet)
      self.audio_packets += 1
      if seconds is not None and packet.pts is not None and \
          float(packet.pts * packet.time_base) > seconds:
        break

  def write(self, rgb: np.ndarray, pts: int | None) -> None:
    import av
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    if pts is None:     # a stream without timestamps: one frame duration each
      pts = 0 if self._last_pts is None else self._last_pts + 1
    frame.pts, frame.time_base = pts, self._time_base
    self._last_pts = pts
    self._out.mux(self.video.encode(frame))
    self._mux_audio_until(float(pts * self._time_base))

  def close(self, complete: bool = True) -> None:
    try:
      self._out.mux(self.video.encode(None))
      if complete:
        self._mux_audio_until(None)
    finally:
      self._out.close()
      self._in.close()


def _save_frame(rgb: np.ndarray, path: str) -> None:
  """Write one frame file via a partial name, then rename (never half a file under `path`)."""
  from colorjax import inference
  stem, ext = os.path.splitext(path)
  tmp = f"{stem}.partial{ext}"
  inference.save_image(rgb, tmp)
  os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# Colouring a stream of frames


class FootageColorizer:
  """Streams frames through cut detection, batched prediction, stabilisation and rendering.

  Memory holds at most `batch_size` + CUT_WINDOW frames. `cuts` lists the frame indices that
  start a new shot (frame 0 excluded) once the stream is done.
  """

  def __init__(self, colorizer, temporal_strength: float = temporal.DEFAULT_STRENGTH,
               saturation: float = 1.0, hints=None, batch_size: int = DEFAULT_BATCH):
    if batch_size < 1:
      raise ValueError(f"batch_size={batch_size}: must be >= 1")
    self.colorizer, self.saturation = colorizer, saturation
    self.hints = None if isinstance(hints, (list, tuple)) and not hints else hints
    self.batch_size = batch_size
    self.detector = temporal.CutDetector()
    self.stabilizer = temporal.Stabilizer(temporal_strength)

  @property
  def cuts(self) -> list[int]:
    return list(self.detector.cuts)

  def __call__(self, frames: Iterator[Frame]) -> Iterator[tuple[Frame, np.ndarray]]:
    from colorjax import inference
    pending: collections.deque = collections.deque()      # [frame, prepared, starts_shot]
    ready: list = []
    for frame in frames:
      prepared = inference.prepare(frame.rgb)
      pending.append([frame, prepared, None])
      self._mark(pending, ready, self.detector.push(prepared.lightness))
      if len(ready) >= self.batch_size:
        yield from self._run(ready)
        ready = []
    self._mark(pending, ready, self.detector.finish())
    if ready:
      yield from self._run(ready)

  def _hints_for(self, prepared):
    """The hints of a shot's first frame: a list of (x, y, colour), or a hint file (JSON points
    or RGBA scribble, read by colorjax.hints for this frame size)."""
    if isinstance(self.hints, (str, os.PathLike)):
      from colorjax import hints as hints_lib
      h, w = prepared.lightness.shape
      return hints_lib.load_hint_file(os.fspath(self.hints), h, w)
    return self.hints

  @staticmethod
  def _mark(pending, ready, decisions) -> None:
    for _, cut in decisions:
      item = pending.popleft()
      item[2] = cut or item[0].index == 0
      ready.append(item)

  def _run(self, items) -> Iterator[tuple[Frame, np.ndarray]]:
    prepared = [p for _, p, _ in items]
    hints = None
    if self.hints is not None and any(starts for _, _, starts in items):
      hints = [self._hints_for(p) if starts else None for _, p, starts in items]
    abs_ = self.colorizer.predict(prepared, hints=hints, batch_size=self.batch_size)
    for (frame, p, starts), ab in zip(items, abs_):
      if starts:
        self.stabilizer.reset()
      ab = self.stabilizer.step(self.colorizer.bucket_lightness(p), ab)
      yield frame, self.colorizer.render(p, ab, saturation=self.saturation)


# ---------------------------------------------------------------------------------------------
# Whole files


@dataclasses.dataclass
class Result:
  output: str
  frames: int
  cuts: list[int]
  seconds: float
  audio_packets: int = 0

  @property
  def fps(self) -> float:
    return self.frames / max(self.seconds, 1e-9)


def _progress(total: int | None, desc: str):
  from tqdm import tqdm
  return tqdm(total=total, unit="frame", desc=desc, file=sys.stderr, dynamic_ncols=True,
              leave=False)


def _write_cuts(dst: str, src: str, cuts: list[int], frames: int, info: VideoInfo | None,
                pts: dict[int, int]) -> str:
  path = dst.rstrip(os.sep) + ".cuts.json"
  shots = [0, *cuts]
  record = {"input": os.path.abspath(src), "frames": frames, "cuts": cuts,
            "shots": [[a, b - 1] for a, b in zip(shots, [*cuts, frames])]}
  if info is not None and info.time_base is not None:
    record["cut_seconds"] = [round(float(pts[c] * info.time_base), 6) for c in cuts if c in pts]
  tmp = path + ".partial"
  with open(tmp, "w") as f:
    json.dump(record, f, indent=1)
  os.replace(tmp, path)
  return path


def colorize_video(colorizer, src: str, dst: str, temporal_strength: float = temporal.DEFAULT_STRENGTH,
                   saturation: float = 1.0, hints=None, batch_size: int = DEFAULT_BATCH,
                   progress: bool = True) -> Result:
  """Colorize one video file `src` into `dst` (see the module docstring); writes the cut list
  to `dst + '.cuts.json'`. Raises VideoError for bad input or an output that cannot hold it."""
  info = probe(src)
  output_container(src, dst, info.audio_codecs)
  if os.path.abspath(src) == os.path.abspath(dst):
    raise VideoError(f"{dst}: would overwrite the input")
  os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
  tmp = partial_name(dst)
  footage = FootageColorizer(colorizer, temporal_strength, saturation, hints, batch_size)
  total = info.frames or (round(_duration(src) * info.rate) if info.rate else None)
  writer = VideoWriter(src, tmp, info)
  count, pts, t0, complete = 0, {}, time.perf_counter(), False
  try:
    with _progress(total, os.path.basename(src)) if progress else _null() as bar:
      for frame, rgb in footage(read_video(src)):
        writer.write(rgb, frame.pts)
        pts[frame.index] = frame.pts
        count += 1
        bar.update(1)
    complete = True
  except KeyboardInterrupt:
    _close_quietly(writer, complete=False)
    print(f"interrupted after {count} frames: the partial video is {tmp}", file=sys.stderr)
    raise
  except BaseException:
    _close_quietly(writer, complete=False)
    _remove(tmp)
    raise
  try:
    writer.close()
  except Exception as e:
    _remove(tmp)
    raise VideoError(f"{dst}: cannot finish writing ({_av_reason(e)})") from None
  os.replace(tmp, dst)
  _write_cuts(dst, src, footage.cuts, count, info, pts)
  return Result(dst, count, footage.cuts, time.perf_counter() - t0, writer.audio_packets)


def colorize_sequence(colorizer, files: Sequence[str], out_dir: str,
                      temporal_strength: float = temporal.DEFAULT_STRENGTH,
                      saturation: float = 1.0, hints=None, batch_size: int = DEFAULT_BATCH,
                      fmt: str | None = None, progress: bool = True) -> Result:
  """Colorize numbered frame files into `out_dir` under the same names (format: the input's,
  or `fmt` png/jpg); writes `out_dir + '.cuts.json'`."""
  from colorjax import inference
  inputs = {os.path.realpath(f) for f in files}
  targets = [inference._output_path(out_dir, os.path.basename(f), fmt) for f in files]
  clash = [t for t in targets if os.path.realpath(t) in inputs]
  if clash:
    raise VideoError(f"{clash[0]}: the output would overwrite the input frame")
  os.makedirs(out_dir, exist_ok=True)
  footage = FootageColorizer(colorizer, temporal_strength, saturation, hints, batch_size)
  count, t0 = 0, time.perf_counter()
  desc = os.path.basename(os.path.dirname(os.path.abspath(files[0])))
  with _progress(len(files), desc) if progress else _null() as bar:
    for frame, rgb in footage(read_frames(files)):
      _save_frame(rgb, targets[frame.index])
      count += 1
      bar.update(1)
  _write_cuts(out_dir, os.path.dirname(os.path.abspath(files[0])), footage.cuts, count, None, {})
  return Result(out_dir, count, footage.cuts, time.perf_counter() - t0)


class _null:
  def __enter__(self):
    return self

  def __exit__(self, *exc):
    return False

  def update(self, n):
    pass


def _duration(path: str) -> float:
  import av
  with av.open(path) as c:
    s = c.streams.video[0]
    if s.duration and s.time_base:
      return float(s.duration * s.time_base)
    return (c.duration or 0) / 1e6


def _close_quietly(writer: VideoWriter, complete: bool) -> None:
  try:
    writer.close(complete=complete)
  except Exception:
    pass


def _remove(path: str) -> None:
  try:
    os.remove(path)
  except OSError:
    pass


def colorize(colorizer, src: str, dst: str, temporal_strength: float | None = None,
             saturation: float = 1.0, hints=None, batch_size: int = DEFAULT_BATCH,
             progress: bool = True) -> Result:
  """`Colorizer.video`: a video file → `dst` (a video file), or a numbered-frame folder →
  `dst` (a folder of frames with the same names)."""
  strength = temporal.DEFAULT_STRENGTH if temporal_strength is None else temporal_strength
  if is_video_file(src):
    return colorize_video(colorizer, src, dst, strength, saturation, hints, batch_size, progress)
  files = numbered_frames(src)
  if files is None:
    raise VideoError(f"{src}: not a video file ({', '.join(VIDEO_EXTENSIONS)}) nor a folder of "
                     f"numbered frames")
  return colorize_sequence(colorizer, files, dst, strength, saturation, hints, batch_size,
                           progress=progress)


# ---------------------------------------------------------------------------------------------
# The colorize command (videos and frame folders; images stay with colorjax.inference)


def _targets(inputs: Sequence[str], output: str) -> list[tuple[str, str]]:
  """(input, output path) per footage input: a video file → a file, a frame folder → a folder.

  With one input, `--output` may name the video file itself (it has a video extension) or,
  for a frame folder, the folder the frames go to; otherwise outputs go inside `--output`.
  """
  from colorjax.data import sources
  ext = os.path.splitext(output)[1].lower()
  if ext in (*sources.IMAGE_EXTENSIONS, *_OTHER_FILE_EXTS) and not os.path.isdir(output):
    raise VideoError(f"{output}: unknown video container {ext}; expected "
                     f"{', '.join(VIDEO_EXTENSIONS)}, or a folder")
  if len(inputs) == 1 and (is_video_file(output) if is_video_file(inputs[0])
                           else not is_video_file(output)):
    return [(inputs[0], output)]
  if is_video_file(output):
    raise VideoError(f"{output}: several inputs need an output folder, not a video file")
  jobs, seen = [], set()
  for inp in inputs:
    name = os.path.basename(os.path.normpath(inp))
    dst = os.path.join(output, name)
    if dst in seen:
      raise VideoError(f"{inp}: its output {dst} is already the output of another input")
    seen.add(dst)
    jobs.append((inp, dst))
  return jobs


def colorize_cli(workdir: str, inputs: Sequence[str], output: str | None,
                 temporal_strength: float | None = None, saturation: float = 1.0,
                 fmt: str | None = None, step: int | None = None, hints=None,
                 batch_size: int = DEFAULT_BATCH, warn_unused: bool = True) -> int:
  """The `--mode=colorize` command for videos and frame folders. Returns 0, or 2 if some
  inputs failed (each reported in one line). Raises ConfigError for usage errors and
  VideoError for inputs that cannot be used, before the model is loaded.

  `hints`: `--hints`, a hint file for every input's first frame of each shot, or a folder
  with one per input named by its stem (clip.mp4 ← clip.json); all read and checked first.
  `warn_unused`: warn about files there that no input names (off when images share it)."""
  from colorjax import config_lib, inference
  from colorjax import hints as hints_lib
  if not output:
    raise config_lib.ConfigError("--output: required (a video file, or the folder to write to)")
  strength = temporal.DEFAULT_STRENGTH if temporal_strength is None else float(temporal_strength)
  if not 0.0 <= strength <= 1.0:
    raise config_lib.ConfigError(f"--temporal={temporal_strength}: must be in [0, 1]")
  try:
    saturation = inference._check_saturation(saturation)
  except ValueError as e:
    raise config_lib.ConfigError(f"--{e}") from None
  try:
    jobs = _targets(inputs, output)
  except VideoError as e:
    raise config_lib.ConfigError(f"--output={e}") from None
  frames, per_input = {}, {}
  for src, dst in jobs:            # check what can be checked before loading the model
    if is_video_file(src):
      info = probe(src)
      output_container(src, dst, info.audio_codecs)
      check_frame_size(dst, info)
    else:
      frames[src] = numbered_frames(src)
    if hints:
      size = ((info.height, info.width) if is_video_file(src)
              else next(read_frames(frames[src][:1])).rgb.shape[:2])
      try:
        per_input[src] = hints_lib.hints_for_image(hints, os.path.normpath(src), *size)
      except hints_lib.HintError as e:
        raise config_lib.ConfigError(f"--hints: {e}") from None
  unused = hints and warn_unused and hints_lib.unused_hint_files(hints, [s for s, _ in jobs])
  if unused:
    print(unused, file=sys.stderr)
  colorizer = inference.load(workdir, step=step)
  failed = 0
  for src, dst in jobs:
    try:
      if is_video_file(src):
        r = colorize_video(colorizer, src, dst, strength, saturation, per_input.get(src),
                           batch_size)
      else:
        r = colorize_sequence(colorizer, frames[src], dst, strength, saturation,
                              per_input.get(src), batch_size, fmt)
    except VideoError as e:
      print(f"error: {e}", file=sys.stderr)
      failed += 1
      continue
    print(f"{src} -> {r.output}: {r.frames} frames, {len(r.cuts)} cuts "
          f"({r.output.rstrip(os.sep)}.cuts.json), {r.fps:.2f} frames/s, temporal {strength:g}"
          + (f", {r.audio_packets} audio packets copied" if r.audio_packets else ""))
  return 2 if failed else 0


# ---------------------------------------------------------------------------------------------
# Stability of frame sequences (`--mode=eval --eval_dirs=FRAME_FOLDERS`, benchmarks/video.py)


def input_flows(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Flows and visibility of a clip's *input* (its L*), as Lai et al. 2018 measure on:
  frames uint8 [T, H, W, 3] (colour or grey content) → (flows [T-1,H,W,2], visible [T-1,H,W])."""
  from colorjax import inference
  grey = np.stack([temporal.grey8(inference.prepare(f).lightness) for f in frames])
  return temporal.sequence_flows(grey)


def stability(frames: np.ndarray, flows: np.ndarray, visible: np.ndarray) -> dict[str, float]:
  """warp_error and cdc of uint8 frames [T, H, W, 3] (flows from `input_flows`)."""
  from colorjax import metrics
  return {"warp_error": float(metrics.warp_error(frames.astype(np.float32) / 255.0, flows,
                                                 visible)),
          "cdc": float(metrics.cdc(frames))}


def mean_delta_e(pred: np.ndarray, true: np.ndarray, chunk: int = 8) -> float:
  """Mean CIEDE2000 over frames and pixels of uint8 [T, H, W, 3] pairs (jitted, in chunks)."""
  import jax
  from colorjax import metrics
  fn = jax.jit(metrics.delta_e)
  values = [np.asarray(fn(pred[i:i + chunk] / np.float32(255), true[i:i + chunk] / np.float32(255)))
            for i in range(0, len(pred), chunk)]
  return float(np.mean(np.concatenate(values)))


def evaluate_sequences(workdir: str, folders: Sequence[str],
                       temporal_strength: float | None = None, step: int | None = None,
                       batch_size: int = DEFAULT_BATCH) -> dict:
  """ΔE00, warping error and CDC of the colorized frames of each numbered-frame folder (the
  folder's own frames are the truth), per-frame and stabilised; writes eval_video.json.
  Frames are held in memory: for evaluation clips, not feature films."""
  from colorjax import evaluate, inference
  strength = temporal.DEFAULT_STRENGTH if temporal_strength is None else temporal_strength
  colorizer = inference.load(workdir, step=step)
  labels = {folder: label for label, folder in evaluate.folder_labels(folders).items()}
  report = {}
  for folder in labels:
    files = numbered_frames(folder)
    truth = np.stack([f.rgb for f in read_frames(files)])
    flows, vis = input_flows(truth)
    row = {"frames": len(files), "truth": stability(truth, flows, vis)}
    for name, s in (("per_frame", 0.0), ("stabilized", strength)):
      footage = FootageColorizer(colorizer, s, batch_size=batch_size)
      out = np.stack([rgb for _, rgb in footage(read_frames(files))])
      row[name] = {"delta_e": mean_delta_e(out, truth), **stability(out, flows, vis),
                   "cuts": footage.cuts}
    report[folder] = row
  path = os.path.join(workdir, "eval_video.json")
  with open(path, "w") as f:
    json.dump({"temporal": strength, "sequences": report}, f, indent=2)
  print(f"frame sequences (temporal {strength:g}; warping error ×1e3, CDC ×1e3):")
  print(f"  {'sequence':>24} {'frames':>6} {'ΔE00 per-frame/stab':>20} "
        f"{'warp err truth/per-frame/stab':>30} {'CDC truth/per-frame/stab':>26}")
  for folder, r in report.items():
    t, p, s = r["truth"], r["per_frame"], r["stabilized"]
    print(f"  {labels[folder]:>24} {r['frames']:>6} "
          f"{p['delta_e']:>9.2f}/{s['delta_e']:<10.2f} "
          f"{1e3 * t['warp_error']:>9.3f}/{1e3 * p['warp_error']:.3f}/{1e3 * s['warp_error']:<9.3f} "
          f"{1e3 * t['cdc']:>8.3f}/{1e3 * p['cdc']:.3f}/{1e3 * s['cdc']:.3f}")
  print(f"wrote {path}")
  return report
