"""Footage: videos and frame folders in and out, cuts, temporal stability, bad input.

Every video here is made by the test (PyAV, moving shapes, 64×48, 24-30 frames); the model is
the randomly initialised tiny generator of test_inference (these tests check files, timing,
audio, cuts and stability, not colour quality).
"""
import json
import os
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

av = pytest.importorskip("av")
pytest.importorskip("cv2")

from colorjax import inference, temporal, video  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
W, H = 64, 48
SCENES = [(40, 60, 200), (200, 180, 40), (30, 160, 60)]


def scene_frame(i: int, cuts=(), w=W, h=H) -> np.ndarray:
  """Frame i of a clip whose background changes at each cut and whose square moves 2 px/frame."""
  scene = sum(i >= c for c in cuts)
  img = np.empty((h, w, 3), np.uint8)
  img[:] = SCENES[scene % 3]
  yy, xx = np.mgrid[0:h, 0:w]
  img[..., 1] = np.clip(img[..., 1] + (xx + 2 * yy) % 23, 0, 255)     # texture for the flow
  x = 4 + (2 * i) % (w - 24)
  img[10:26, x:x + 16] = (250, 250, 250) if scene % 2 == 0 else (10, 10, 10)
  return img


def make_video(path, n=24, rate=Fraction(24), audio=None, cuts=(), w=W, h=H, codec=None,
               pix_fmt="yuv420p", rotation=0, pts=None):
  """Write a clip; audio: None, "aac" or "libopus" (a 440 Hz tone as long as the video)."""
  ext = os.path.splitext(path)[1]
  out = av.open(str(path), "w")
  v = out.add_stream(codec or ("libvpx" if ext == ".webm" else "libx264"), rate=rate)
  v.width, v.height, v.pix_fmt = w, h, pix_fmt
  if rotation:
    v.set_display_rotation(rotation)
  a = out.add_stream(audio, rate=48000) if audio else None
  for i in range(n):
    f = av.VideoFrame.from_ndarray(scene_frame(i, cuts, w, h), format="rgb24")
    if pts is not None:
      f.pts, f.time_base = pts[i], Fraction(1, 24)
    out.mux(v.encode(f))
  out.mux(v.encode(None))
  if a is not None:
    samples = int(48000 * n / rate)
    tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / 48000)).astype(np.float32)
    size = a.codec_context.frame_size or 1024
    for s0 in range(0, samples, size):
      chunk = tone[s0:s0 + size]
      af = av.AudioFrame.from_ndarray(np.stack([chunk, chunk]), format="fltp", layout="stereo")
      af.sample_rate, af.pts = 48000, s0
      out.mux(a.encode(af))
    out.mux(a.encode(None))
  out.close()
  return str(path)


def describe(path):
  """What a user checks: size, rate, time base, frame timestamps, rotation, audio packets."""
  with av.open(str(path)) as c:
    s = c.streams.video[0]
    frames = list(c.decode(s))
    info = {"size": (s.width, s.height), "rate": s.average_rate, "time_base": s.time_base,
            "pts": [f.pts for f in frames], "rotation": frames[0].rotation if frames else None,
            "audio_codecs": [a.codec_context.name for a in c.streams.audio]}
  with av.open(str(path)) as c:
    info["audio"] = [(p.pts, bytes(p)) for p in c.demux(*c.streams.audio) if p.dts is not None] \
        if c.streams.audio else []
  return info


# ---------------------------------------------------------------------------------------------
# Video in, video out


def test_mp4_with_aac_keeps_size_rate_frames_audio_and_finds_the_cut(colorizer, tmp_path):
  src = make_video(tmp_path / "clip.mp4", n=24, audio="aac", cuts=(12,))
  dst = str(tmp_path / "out" / "clip.mp4")
  result = video.colorize_video(colorizer, src, dst, progress=False)
  a, b = describe(src), describe(dst)
  assert b["size"] == a["size"] == (W, H)
  assert b["rate"] == a["rate"] == 24 and b["time_base"] == a["time_base"]
  assert b["pts"] == a["pts"] and len(b["pts"]) == 24 == result.frames
  assert b["audio_codecs"] == ["aac"] and b["audio"] == a["audio"] and len(a["audio"]) > 10
  assert result.audio_packets == len(a["audio"])
  cuts = json.load(open(dst + ".cuts.json"))
  assert cuts["cuts"] == [12] == result.cuts and cuts["shots"] == [[0, 11], [12, 23]]
  assert cuts["cut_seconds"] == [0.5]
  assert not os.path.exists(video.partial_name(dst))
  with av.open(dst) as c:                       # really coloured, not a grey copy
    rgb = next(c.decode(video=0)).to_ndarray(format="rgb24").astype(int)
  assert (rgb.max(-1) - rgb.min(-1)).mean() > 3


def test_exact_rational_rate_odd_size_and_rotation_kept(colorizer, tmp_path):
  src = make_video(tmp_path / "ntsc.mkv", n=12, rate=Fraction(30000, 1001), w=63, h=47,
                   codec="ffv1", pix_fmt="yuv420p")      # 4:2:0 at an odd size
  dst = str(tmp_path / "ntsc_out.mp4")
  video.colorize_video(colorizer, src, dst, progress=False)
  a, b = describe(src), describe(dst)
  assert b["size"] == (63, 47) and len(b["pts"]) == 12
  assert [p * b["time_base"] for p in b["pts"]] == [p * a["time_base"] for p in a["pts"]]
  with av.open(dst) as c:
    assert c.streams.video[0].codec_context.pix_fmt == "yuv444p"
  src = make_video(tmp_path / "rot.mp4", n=6, rate=Fraction(30000, 1001), rotation=90)
  dst = str(tmp_path / "rot_out.mp4")
  video.colorize_video(colorizer, src, dst, progress=False)
  a, b = describe(src), describe(dst)
  assert a["rotation"] == b["rotation"] == 90 and b["size"] == (W, H)
  assert b["rate"] == Fraction(30000, 1001) and b["pts"] == a["pts"]


def test_variable_frame_rate_timestamps_are_kept(colorizer, tmp_path):
  pts = [0, 1, 2, 4, 5, 8, 9, 12]
  src = make_video(tmp_path / "vfr.mp4", n=8, pts=pts)
  dst = str(tmp_path / "vfr_out.mp4")     # (MKV/WebM would round timestamps to ms)
  video.colorize_video(colorizer, src, dst, progress=False)
  a, b = describe(src), describe(dst)
  assert [p * b["time_base"] for p in b["pts"]] == [p * a["time_base"] for p in a["pts"]]


def test_opus_audio_goes_to_webm_not_mp4(colorizer, tmp_path):
  src = make_video(tmp_path / "tone.webm", n=12, audio="libopus")
  bad = str(tmp_path / "tone.mp4")
  with pytest.raises(video.VideoError, match=r"tone\.mp4: a \.mp4 file cannot hold the opus audio.*"
                                             r"write \.mkv or \.webm"):
    video.colorize_video(colorizer, src, bad, progress=False)
  assert not os.listdir(tmp_path) == [] and not os.path.exists(bad)
  dst = str(tmp_path / "tone_out.mkv")
  video.colorize_video(colorizer, src, dst, temporal_strength=0.0, progress=False)
  a, b = describe(src), describe(dst)
  assert b["audio_codecs"] == ["opus"] and b["audio"] == a["audio"]
  assert [p * b["time_base"] for p in b["pts"]] == [p * a["time_base"] for p in a["pts"]]


def test_ctrl_c_leaves_a_partial_file_and_errors_leave_none(colorizer, tmp_path):
  src = make_video(tmp_path / "clip.mp4", n=24)

  class StopsAfter:      # the user presses Ctrl-C while frame 10 is rendered
    def __init__(self, inner, exc):
      self.inner, self.calls, self.exc = inner, 0, exc

    def __getattr__(self, name):        # predict, bucket_lightness: the real colorizer's
      return getattr(self.inner, name)

    def render(self, *a, **k):
      self.calls += 1
      if self.calls > 10:
        raise self.exc
      return self.inner.render(*a, **k)

  dst = str(tmp_path / "out.mp4")
  with pytest.raises(KeyboardInterrupt):
    video.colorize_video(StopsAfter(colorizer, KeyboardInterrupt()), src, dst, progress=False)
  assert not os.path.exists(dst) and os.path.getsize(tmp_path / "out.partial.mp4") > 0
  dst2 = str(tmp_path / "out2.mp4")
  with pytest.raises(MemoryError):
    video.colorize_video(StopsAfter(colorizer, MemoryError()), src, dst2, progress=False)
  assert not os.path.exists(dst2) and not os.path.exists(tmp_path / "out2.partial.mp4")


def test_numbered_frames_in_numbered_frames_out(colorizer, tmp_path):
  from PIL import Image
  src = tmp_path / "seq"
  src.mkdir()
  for i in range(10):
    Image.fromarray(scene_frame(i, cuts=(6,))).save(src / f"frame_{i + 1:04d}.png")
  assert video.numbered_frames(str(tmp_path)) is None          # has a sub-folder of images
  files = video.numbered_frames(str(src))
  assert [os.path.basename(f) for f in files][:2] == ["frame_0001.png", "frame_0002.png"]
  out = str(tmp_path / "out")
  result = colorizer.video(str(src), out, progress=False)      # the notebook API
  assert sorted(os.listdir(out)) == sorted(os.listdir(src))
  assert result.cuts == [6] and json.load(open(out + ".cuts.json"))["cuts"] == [6]
  with Image.open(os.path.join(out, "frame_0003.png")) as im:
    assert im.size == (W, H) and im.mode == "RGB"


def test_numbered_photos_of_several_sizes_are_images_not_frames(tmp_path):
  """IMG_0001.jpg ... or kodim01.png ...: photos are coloured one by one, not as a sequence."""
  from PIL import Image
  for i, (w, h) in enumerate([(60, 40), (40, 60), (60, 40)]):
    Image.fromarray(scene_frame(i, w=w, h=h)).save(tmp_path / f"IMG_{i:04d}.png")
  assert video.numbered_frames(str(tmp_path)) is None and not video.is_footage(str(tmp_path))
  os.remove(tmp_path / "IMG_0001.png")            # the same size: a sequence
  assert len(video.numbered_frames(str(tmp_path))) == 2


# ---------------------------------------------------------------------------------------------
# Bad input: one line naming the file, nothing under the final name


def _bad_inputs(folder):
  good = make_video(folder / "good.mkv", n=24)
  data = open(good, "rb").read()
  cases = {}
  (folder / "text.mp4").write_text("this is not a video\n")
  cases["text.mp4"] = r"not a readable video"
  (folder / "empty.mov").write_bytes(b"")
  cases["empty.mov"] = r"empty file"
  (folder / "head.mkv").write_bytes(data[:300])
  cases["head.mkv"] = r"(0 frames|not a readable video|truncated|corrupt)"
  (folder / "trunc.mp4").write_bytes(open(make_video(folder / "full.mp4", n=24), "rb").read()[:-600])
  cases["trunc.mp4"] = r"(not a readable video|truncated|corrupt)"
  out = av.open(str(folder / "noframes.mp4"), "w")       # no frames: FFmpeg drops the stream
  v = out.add_stream("libx264", rate=24)
  v.width, v.height, v.pix_fmt = W, H, "yuv420p"
  out.start_encoding()
  out.close()
  cases["noframes.mp4"] = r"no video stream"
  audio_only = av.open(str(folder / "audio.mp4"), "w")
  a = audio_only.add_stream("aac", rate=48000)
  frame = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), format="fltp",
                                     layout="stereo")
  frame.sample_rate, frame.pts = 48000, 0
  audio_only.mux(a.encode(frame))
  audio_only.mux(a.encode(None))
  audio_only.close()
  cases["audio.mp4"] = r"no video stream \(streams: audio\)"
  return cases


def test_bad_videos_are_one_line_errors_naming_the_file(colorizer, tmp_path):
  cases = _bad_inputs(tmp_path)
  for name, reason in cases.items():
    dst = str(tmp_path / "out" / name)
    with pytest.raises(video.VideoError) as info:
      video.colorize_video(colorizer, str(tmp_path / name), dst, progress=False)
    message = str(info.value)
    assert message.startswith(str(tmp_path / name) + ": ") and "\n" not in message, message
    assert __import__("re").search(reason, message), message
    assert not os.path.exists(dst) and not os.path.exists(video.partial_name(dst))


def _launch(*args, cwd=ROOT):
  env = dict(os.environ, PYTHONPATH=ROOT)
  return subprocess.run([sys.executable, os.path.join(ROOT, "launch.py"), *args], cwd=cwd,
                        env=env, capture_output=True, text=True, timeout=600)


def test_command_colorizes_a_video_and_refuses_bad_ones(run_dir, tmp_path):
  src = make_video(tmp_path / "clip.webm", n=12, audio="libopus")
  (tmp_path / "broken.mp4").write_text("not a video")
  bad = _launch("--mode=colorize", f"--workdir={run_dir}", f"--input={tmp_path / 'broken.mp4'}",
                f"--output={tmp_path / 'x.mp4'}")
  assert bad.returncode == 2 and "Traceback" not in bad.stderr
  assert bad.stderr.strip().splitlines()[-1].startswith(f"error: {tmp_path / 'broken.mp4'}: ")
  bad = _launch("--mode=colorize", f"--workdir={run_dir}", f"--input={src}",
                f"--output={tmp_path / 'clip.mp4'}", "--temporal=0.5")
  assert bad.returncode == 2 and "cannot hold the opus audio" in bad.stderr
  assert not os.path.exists(tmp_path / "clip.mp4")
  ok = _launch("--mode=colorize", f"--workdir={run_dir}", f"--input={src}",
               f"--output={tmp_path / 'out'}", "--temporal=0.5")
  assert ok.returncode == 0, ok.stderr[-2000:]
  assert "read only" not in ok.stderr and "read_only" not in ok.stderr
  out = tmp_path / "out" / "clip.webm"
  assert describe(out)["pts"] == describe(src)["pts"]
  assert (tmp_path / "out" / "clip.webm.cuts.json").exists()


def test_command_checks_hints_and_outputs_before_loading_the_model(tmp_path):
  """Bad hints, a WebM of odd size, a file name that is not a video: one line, exit code 2,
  before the model loads (the run directory here does not even exist), nothing written."""
  from PIL import Image
  make_video(tmp_path / "clip.mp4", n=4)
  make_video(tmp_path / "odd.mp4", n=4, w=65, h=49, pix_fmt="yuv444p")
  Image.fromarray(scene_frame(0)).save(tmp_path / "still.png")
  (tmp_path / "bad.json").write_text(json.dumps([[1000, 10, "#ff0000"]]))
  (tmp_path / "hf").mkdir()
  (tmp_path / "hf" / "clip.json").write_text("[[5, 5, ")
  run = f"--workdir={tmp_path / 'no_run'}"
  cases = [
      (["--input=clip.mp4", "--output=o.mp4", "--hints=bad.json"],
       "error: --hints: bad.json: hint 0 [1000, 10, \"#ff0000\"]: (1000, 10) is outside the "
       "64×48 image"),
      (["--input=clip.mp4", "--output=o.mp4", "--hints=hf"],
       f"error: --hints: {os.path.join('hf', 'clip.json')}: not valid JSON"),
      (["--input=odd.mp4", "--output=o.webm"],
       "error: o.webm: VP8 (WebM) cannot hold an odd frame size 65×49"),
      (["--input=clip.mp4", "--output=o.gif"], "error: --output=o.gif: unknown video container"),
      (["--input=clip.mp4", "--input=still.png", "--output=o.mp4"],
       "error: --output=o.mp4: a video file, but --input also names images")]
  for args, needle in cases:
    r = _launch("--mode=colorize", run, *args, cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [r.stderr.strip()], r.stderr
    assert r.stderr.startswith(needle), (args, r.stderr)
  assert sorted(os.listdir(tmp_path)) == ["bad.json", "clip.mp4", "hf", "odd.mp4", "still.png"]


def _first_frame_a_star(path, box=(slice(36, 45), slice(28, 37))) -> float:
  from colorjax import color
  with av.open(str(path)) as c:
    first = next(c.decode(video=0)).to_ndarray(format="rgb24")
  return float(color.rgb_to_lab(first[box].astype(np.float32) / 255)[..., 1].mean())


def test_hint_folder_for_a_video_by_stem_and_unused_files_named(colorizer, run_dir, tmp_path):
  make_video(tmp_path / "clip.mp4", n=4)
  (tmp_path / "hf").mkdir()
  (tmp_path / "hf" / "clip.JSON").write_text(json.dumps([[32, 40, "#ff0000", 9]]))
  (tmp_path / "hf" / "clp.json").write_text(json.dumps([[5, 5, "#00ff00"]]))
  r = _launch("--mode=colorize", f"--workdir={run_dir}", "--input=clip.mp4", "--output=o.mp4",
              "--hints=hf", "--temporal=0", cwd=tmp_path)
  assert r.returncode == 0, r.stderr[-2000:]
  assert "warning: --hints=hf: clp.json match no input" in r.stderr
  colorizer.video(str(tmp_path / "clip.mp4"), str(tmp_path / "plain.mp4"), temporal=0,
                  progress=False)
  hinted, plain = (_first_frame_a_star(tmp_path / f) for f in ("o.mp4", "plain.mp4"))
  assert hinted > 25 and hinted > plain + 20, (hinted, plain)   # red's a* is ~80


# ---------------------------------------------------------------------------------------------
# Cuts and temporal stability (no model needed)


def _lightness(rgb):
  return inference.prepare(rgb).lightness


def test_cut_detector_finds_cuts_not_motion():
  detector = temporal.CutDetector()
  decided = []
  for i in range(30):
    decided += detector.push(_lightness(scene_frame(i, cuts=(10, 21))))
  decided += detector.finish()
  assert [i for i, _ in decided] == list(range(30))
  assert detector.cuts == [10, 21] == [i for i, cut in decided if cut]


def _textured_sequence(n=12, shift=2, h=48, w=80, seed=0):
  """L* frames of a smooth random texture panning `shift` px/frame, and its true a*b*."""
  rng = np.random.default_rng(seed)
  import cv2
  base = cv2.GaussianBlur(rng.random((h, w + shift * n)).astype(np.float32), (0, 0), 3)
  base = (base - base.min()) / (base.max() - base.min())
  ab_base = np.stack([60 * base - 30, 40 - 50 * base], -1).astype(np.float32)
  Ls = [20 + 60 * base[:, shift * i:shift * i + w] for i in range(n)]
  abs_ = [ab_base[:, shift * i:shift * i + w] for i in range(n)]
  return Ls, abs_


def test_stabilizer_lowers_flicker_and_keeps_colour():
  Ls, truth = _textured_sequence()
  rng = np.random.default_rng(1)
  # Per-frame predictions: the truth plus a colour cast that jumps from frame to frame.
  preds = [t + rng.normal(0, 6, size=2).astype(np.float32) for t in truth]
  for strength, expect_lower in ((0.0, False), (0.8, True)):
    stab = temporal.Stabilizer(strength)
    outs = [stab.step(L, p) for L, p in zip(Ls, preds)]
    jumps = np.mean([np.abs(b[:, 8:-8] - a[:, 10:-6]).mean() for a, b in zip(outs, outs[1:])])
    raw = np.mean([np.abs(b[:, 8:-8] - a[:, 10:-6]).mean() for a, b in zip(preds, preds[1:])])
    if expect_lower:
      assert jumps < 0.5 * raw
      err = np.mean([np.abs(o - t).mean() for o, t in zip(outs, truth)])
      assert err < 1.1 * np.mean([np.abs(p - t).mean() for p, t in zip(preds, truth)])
    else:
      assert all(np.array_equal(o, p) for o, p in zip(outs, preds))
  with pytest.raises(ValueError, match="temporal strength 1.5"):
    temporal.Stabilizer(1.5)


def test_visibility_marks_pixels_that_leave_the_frame():
  Ls, _ = _textured_sequence(n=2, shift=4)
  a, b = temporal.grey8(Ls[0]), temporal.grey8(Ls[1])
  bw, fw = temporal.flow(b, a), temporal.flow(a, b)
  # b(x) = a(x + 4): the flow is +4 px in x, and every pixel of b is seen in a
  assert abs(np.median(bw[..., 0]) - 4) < 0.5 and abs(np.median(bw[..., 1])) < 0.5
  vis = temporal.visible(bw, fw)
  assert vis[:, 4:-8].mean() > 0.9 and not vis[:, -2:].any()


def test_evaluate_sequences_reports_stability_beside_delta_e(run_dir, tmp_path):
  from PIL import Image
  folder = tmp_path / "seq"
  folder.mkdir()
  for i in range(6):
    Image.fromarray(scene_frame(i)).save(folder / f"{i:03d}.png")
  report = video.evaluate_sequences(run_dir, [str(folder)])[str(folder)]
  assert report["frames"] == 6
  for k in ("per_frame", "stabilized"):
    assert report[k]["delta_e"] > 0 and report[k]["warp_error"] >= 0 and report[k]["cdc"] >= 0
  assert os.path.exists(os.path.join(run_dir, "eval_video.json"))
