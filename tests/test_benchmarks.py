"""The benchmark scripts run end to end and print their tables (tiny sizes: behaviour, not
speed; the numbers are measured by hand, see README)."""
import os
import re
import subprocess
import sys

import numpy as np

from conftest import ROOT


def _run(script, *args):
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  out = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", script), *args],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stdout + out.stderr
  return out.stdout


def test_train_step_prints_throughput_and_flops():
  out = _run("train_step.py", "--batch", "2", "--size", "32", "--steps", "1", "--warmup", "0",
             "--peer", "off", "--encoder", "resnet10", "--width", "8", "--disc_width", "8")
  row = re.search(r"colorjax \(JAX\)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", out)
  assert row and all(float(v) > 0 for v in row.groups()), out
  assert "GFLOP per step" in out


def test_convolution_census_times_every_convolution_of_the_step():
  out = _run("convolutions.py", "--census", "--batch", "1", "--size", "32", "--repeats", "1",
             "--top", "3")
  count = int(re.search(r"(\d+) convolutions in the compiled step", out).group(1))
  assert count > 100, out                    # G and D, forward and both gradients
  assert re.search(r"by kind: .*forward .*s", out) and "weight gradient" in out
  assert re.search(r"sum of all convolutions: [\d.]+ s per step", out)


def test_vivid_step_benchmark_times_three_steps_side_by_side():
  out = _run("vivid_step.py", "--batch", "2", "--size", "32", "--rounds", "1",
             "--encoder", "resnet10", "--width", "8")
  times = dict(re.findall(r"^  (recipe|vivid, local encoding|vivid, dense encoding)\s+([\d.]+) ms",
                          out, re.M))
  assert len(times) == 3 and all(float(t) > 0 for t in times.values()), out
  assert re.search(r"local / dense encoding: [\d.]+×", out), out


def test_metrics_benchmark_prints_both_ratios():
  out = _run("metrics.py", "--pixels", "20000", "--repeats", "1", "--ssim-batch", "2")
  assert re.search(r"colorjax float32 vs skimage float64: [\d.]+x", out), out
  assert re.search(r"colorjax vs skimage float64: [\d.]+x", out), out


def test_video_frames_add_usable_frames_of_each_clip_to_its_domain(tmp_path):
  """benchmarks/video_frames.py: every N-th frame, fades skipped, resized, cached, by kind."""
  import pytest
  pytest.importorskip("av")
  from PIL import Image
  from test_video import make_video
  sys.path.insert(0, ROOT)
  from benchmarks import video_frames
  clips = tmp_path / "data" / "video"
  clips.mkdir(parents=True)
  make_video(clips / "cartoon.mp4", n=10)                 # 64×48, coloured, moving square
  make_video(clips / "film.mp4", n=6)
  (clips / "manifest.csv").write_text("file,kind\ncartoon.mp4,3D-CGI animation\n"
                                      "film.mp4,live action (with VFX)\n")
  cache = tmp_path / "cache"
  frames = video_frames.training_frames(str(tmp_path / "data"), 3, str(cache), short_side=24)
  names = {d: [os.path.basename(r[1]) for r in recs] for d, recs in frames.items()}
  assert names == {"animation": ["frame_00000.png", "frame_00003.png", "frame_00006.png",
                                 "frame_00009.png"],
                   "photos": ["frame_00000.png", "frame_00003.png"]}
  assert all(r[0] == "file" for recs in frames.values() for r in recs)
  assert Image.open(frames["animation"][0][1]).size == (32, 24)     # short side 24
  os.remove(clips / "cartoon.mp4")                         # cached: not decoded again
  assert video_frames.training_frames(str(tmp_path / "data"), 3, str(cache), 24) == frames
  assert video_frames.training_frames(str(tmp_path / "data"), 0, str(cache), 24) == {
      "animation": [], "photos": []}
  # A fade (black) frame carries nothing to learn: skipped.
  black = np.zeros((48, 64, 3), np.uint8)
  assert not video_frames._usable(black) and video_frames._usable(
      np.asarray(Image.open(frames["photos"][0][1]).convert("RGB").resize((64, 48))))
