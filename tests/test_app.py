"""The web app's HTTP API (`--mode=serve`): answers, limits, errors, and 20 concurrent requests.

Real parts throughout: tiny random checkpoints written with `checkpoints.save`, the real
FastAPI app (starlette's TestClient, or a real uvicorn server on a free loopback port for the
concurrency test), real `launch.py` processes for the command line.
"""
import asyncio
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import zlib

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the app extra (fastapi) is not installed")
pytest.importorskip("httpx", reason="httpx (test extra) is not installed")
from fastapi.testclient import TestClient

from app_helpers import STEPS, grey_image, make_study
from colorjax import app as app_lib
from colorjax import color, inference

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def png(a: np.ndarray) -> bytes:
  buf = io.BytesIO()
  Image.fromarray(a).save(buf, format="PNG")
  return buf.getvalue()


def decode(data: bytes) -> np.ndarray:
  return np.asarray(Image.open(io.BytesIO(data)))


def png_header_only(width: int, height: int, idat: bytes = b"") -> bytes:
  """A PNG whose header declares width×height grey pixels (8 bit), with the given IDAT data."""
  def chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
  ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
  return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
          + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
  return make_study(str(tmp_path_factory.mktemp("study")))


@pytest.fixture(scope="module")
def models(study_dir):
  return app_lib.load_models(study_dir)


@pytest.fixture(scope="module")
def client(models):
  with TestClient(app_lib.create_app(models)) as c:
    yield c


def error_of(response, status: int) -> str:
  """The one-line message of an error response (and check it is one, without a traceback)."""
  assert response.status_code == status, response.text
  message = response.json()["error"]
  assert "\n" not in message and "Traceback" not in message
  return message


def test_study_dir_lists_three_models_with_their_steps(client, study_dir):
  info = client.get("/api/models").json()
  assert [(m["name"], m["step"]) for m in info["models"]] == list(STEPS.items())
  assert all(m["path"] == os.path.join(study_dir, m["name"]) for m in info["models"])
  assert info["limits"]["bytes"] == app_lib.MAX_BYTES


def test_a_run_dir_is_one_model(study_dir):
  runs = app_lib.find_runs(os.path.join(study_dir, "movie"))
  assert runs == {"movie": os.path.join(study_dir, "movie")}


def test_page_is_served_with_a_same_origin_policy(client):
  r = client.get("/")
  assert r.status_code == 200 and "<title>colorjax</title>" in r.text
  assert "default-src 'self'" in r.headers["content-security-policy"]
  # offline by construction: nothing on the page points outside this origin
  assert "http://" not in r.text and "https://" not in r.text and "//cdn" not in r.text


def test_colorize_answers_what_the_colorizer_gives(client, models):
  grey = grey_image(48, 80, seed=1)
  answers = []
  for name in STEPS:
    r = client.post(f"/api/colorize?model={name}&saturation=1.5", content=png(grey))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert r.headers["x-model"] == name and r.headers["x-checkpoint-step"] == str(STEPS[name])
    expected = models[name].colorizer(grey, saturation=1.5)
    np.testing.assert_array_equal(decode(r.content), expected)
    answers.append(expected)
  # the three models really differ, so an answer from the wrong model would be seen
  assert not np.array_equal(answers[0], answers[1]) and not np.array_equal(answers[1], answers[2])


def test_hints_reach_the_colorizer(client, models):
  grey = grey_image(48, 80, seed=6)
  points = [[10, 12, "#2040c0"], [70.5, 40, "#c08020"]]
  r = client.post("/api/colorize", params={"model": "mixed", "patch": 2,
                                           "hints": json.dumps(points)}, content=png(grey))
  assert r.status_code == 200, r.text
  expected = models["mixed"].colorizer(grey, hints=[tuple(p) for p in points], patch=2)
  np.testing.assert_array_equal(decode(r.content), expected)
  assert not np.array_equal(expected, models["mixed"].colorizer(grey))


def test_previews_grey_and_original(client):
  rgb = np.zeros((20, 30, 3), np.uint8)
  rgb[..., 0], rgb[..., 2] = 200, 40
  r = client.post("/api/preview?kind=grey", content=png(rgb))
  assert r.headers["x-colour"] == "1" and (r.headers["x-width"], r.headers["x-height"]) == ("30", "20")
  grey = decode(r.content)
  expected = color.linear_to_srgb8(inference.prepare(rgb).luminance)
  assert grey.shape == (20, 30) and np.array_equal(grey, expected)
  assert np.array_equal(decode(client.post("/api/preview?kind=original", content=png(rgb)).content), rgb)
  r = client.post("/api/preview?kind=grey", content=png(grey))
  assert r.headers["x-colour"] == "0"


def test_unreadable_and_wrong_type_uploads_are_refused_with_a_message(client):
  assert "empty upload" in error_of(client.post("/api/colorize?model=movie", content=b""), 400)
  text = b"just text, saved as photo.png\n" * 10
  assert "not an image" in error_of(client.post("/api/colorize?model=movie", content=text), 415)
  # an SVG is not accepted: type is decided by content, not by name or content-type header
  svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
  r = client.post("/api/colorize?model=movie", content=svg, headers={"content-type": "image/png"})
  assert "not an image" in error_of(r, 415)
  truncated = png(grey_image(40, 40, seed=2))[:120]
  assert "cannot decode" in error_of(client.post("/api/colorize?model=movie", content=truncated), 400)
  tiny = png(np.zeros((1, 5), np.uint8))
  assert "too small" in error_of(client.post("/api/preview", content=tiny), 400)


def test_size_limits_bytes_pixels_and_decompression_bombs(models):
  with TestClient(app_lib.create_app(models, max_bytes=4000, max_pixels=5000)) as c:
    big = np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8)    # ~4.2 kB PNG
    assert "file too large" in error_of(c.post("/api/colorize?model=movie", content=png(big)), 413)
    many = png(np.zeros((80, 80), np.uint8))        # small file, 6400 px > 5000
    message = error_of(c.post("/api/colorize?model=movie", content=many), 413)
    assert "80×80 px" in message and "limit is 0.0 Mpx" in message
  # A real bomb: 30 KB of deflate that would decode to 6000×5000 px (over the 24 Mpx default).
  idat = zlib.compress(b"\0" * (6001 * 5000), 9)
  assert len(idat) < 50_000
  with TestClient(app_lib.create_app(models)) as c:
    message = error_of(c.post("/api/colorize?model=movie", content=png_header_only(6000, 5000, idat)), 413)
    assert "6000×5000 px = 30.0 Mpx" in message
    # Far over PIL's own bomb limit: refused from the header alone.
    message = error_of(c.post("/api/preview", content=png_header_only(40000, 40000)), 413)
    assert "decompression bomb" in message


def test_bad_parameters_are_refused(client):
  body = png(grey_image(16, 16, seed=3))
  def refused(**params):
    return error_of(client.post("/api/colorize", params=params, content=body), 422)
  assert "expected one of cartoon, movie, mixed" in refused(model="../../etc/passwd")
  assert "saturation" in refused(model="movie", saturation=-1)
  assert "not a number" in refused(model="movie", saturation="lots")
  assert "patch" in refused(model="movie", patch=0)
  assert "not valid JSON" in refused(model="movie", hints="[[1,2")
  assert "outside the 16×16 image" in refused(model="movie", hints=json.dumps([[40, 2, "#ff0000"]]))
  assert "hints[0]" in refused(model="movie", hints=json.dumps([[1, 2, "red"]]))
  assert "at most" in refused(model="movie", hints=json.dumps([[1, 1, "#ff0000"]] * 300))
  assert "grey or original" in error_of(client.post("/api/preview?kind=/etc/passwd", content=body), 422)


def test_no_temporary_files_and_no_client_paths(client, monkeypatch, tmp_path):
  monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
  big = grey_image(1100, 1600, seed=4)                 # a ~1 MB+ upload
  r = client.post("/api/colorize?model=mixed", content=png(big))
  assert r.status_code == 200 and decode(r.content).shape == (1100, 1600, 3)
  # a path in the query is not a parameter the server knows: it is never opened
  r = client.post("/api/colorize?model=mixed&path=/etc/hostname&file=/etc/hostname", content=b"")
  assert "empty upload" in error_of(r, 400)
  assert os.listdir(tmp_path) == []


def test_loopback_server_refuses_foreign_host_headers(models):
  api = app_lib.create_app(models, allowed_hosts=["127.0.0.1", "localhost"])
  with TestClient(api, base_url="http://127.0.0.1") as c:
    assert c.get("/api/models").status_code == 200
    assert c.get("/api/models", headers={"host": "attacker.example"}).status_code == 400


def test_20_concurrent_requests_all_complete_none_mixed_up(models):
  """20 requests at once, each with its own image, model and saturation, through a real
  uvicorn server: every answer is exactly what the Colorizer gives for that request's input."""
  import httpx
  jobs = [(grey_image(40, 56, seed=100 + i), list(STEPS)[i % 3], 0.5 + 0.1 * i) for i in range(20)]
  api = app_lib.create_app(models)

  async def fire(url):
    async with httpx.AsyncClient(base_url=url, timeout=300) as c:
      return await asyncio.gather(*[
          c.post("/api/colorize", params={"model": m, "saturation": f"{s:.2f}"}, content=png(g))
          for g, m, s in jobs])

  with app_lib.running(api) as url:
    answers = asyncio.run(fire(url))
    assert api.state.device.queued == 0 and api.state.device.done >= 20
  assert [r.status_code for r in answers] == [200] * 20
  for (grey, model, sat), r in zip(jobs, answers):
    assert r.headers["x-model"] == model
    expected = models[model].colorizer(grey, saturation=float(f"{sat:.2f}"))
    np.testing.assert_array_equal(decode(r.content), expected)


# ---- the command line ------------------------------------------------------------------------

def launch(*args, env=None, timeout=180):
  env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + (env or {}).get("PYTHONPATH", ""),
             **{k: v for k, v in (env or {}).items() if k != "PYTHONPATH"})
  return subprocess.run([sys.executable, os.path.join(ROOT, "launch.py"), *args], cwd=ROOT,
                        env=env, capture_output=True, text=True, timeout=timeout)


def test_serve_without_the_app_extra_names_it(tmp_path, study_dir):
  fake = tmp_path / "no_fastapi" / "fastapi"      # an installation where fastapi is missing
  fake.mkdir(parents=True)
  (fake / "__init__.py").write_text(
      "raise ModuleNotFoundError(\"No module named 'fastapi'\", name='fastapi')\n")
  r = launch("--mode=serve", f"--workdir={study_dir}", "--port=0",
             env={"PYTHONPATH": str(tmp_path / "no_fastapi")})
  assert r.returncode == 2, r.stderr
  assert r.stderr.strip() == ("error: --mode=serve needs the app extra (fastapi is missing): "
                              "pip install -e '.[app]'")


def test_serve_refuses_a_wrong_workdir(tmp_path):
  r = launch("--mode=serve", f"--workdir={tmp_path}", "--port=0")
  assert r.returncode == 2 and "neither a run directory" in r.stderr
  assert len(r.stderr.strip().splitlines()) == 1


def test_a_busy_port_is_a_one_line_error():
  from colorjax import config_lib
  busy = app_lib.listen("127.0.0.1", 0)
  try:
    port = busy.getsockname()[1]
    with pytest.raises(config_lib.ConfigError, match=rf"--port={port}: cannot listen on 127.0.0.1:{port}"):
      app_lib.listen("127.0.0.1", port)
  finally:
    busy.close()


# ---- video (the `video` extra) -----------------------------------------------------------------

def tiny_video(path, frames: int = 10, w: int = 64, h: int = 48) -> list[np.ndarray]:
  """An H.264 MP4 of moving grey gradients; returns its frames (RGB uint8)."""
  av = pytest.importorskip("av", reason="PyAV (video extra) is not installed")
  out = []
  with av.open(str(path), "w") as c:
    s = c.add_stream("libx264", rate=12)
    s.width, s.height, s.pix_fmt = w, h, "yuv420p"
    for i in range(frames):
      g = np.roll(grey_image(h, w, seed=7), 2 * i, axis=1)
      rgb = np.stack([g] * 3, -1)
      out.append(rgb)
      c.mux(s.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
    c.mux(s.encode(None))
  return out


def test_video_job_reports_progress_and_returns_an_mp4(client, tmp_path, monkeypatch):
  av = pytest.importorskip("av", reason="PyAV (video extra) is not installed")
  monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
  os.makedirs(tmp_path / "tmp")
  frames = tiny_video(tmp_path / "clip.mp4")
  r = client.post("/api/video", params={"model": "cartoon", "saturation": 1.2},
                  content=(tmp_path / "clip.mp4").read_bytes())
  assert r.status_code == 200, r.text
  job = r.json()
  assert job["state"] in ("queued", "running") and job["total"] == 10
  seen, deadline = [], time.monotonic() + 300
  while job["state"] in ("queued", "running") and time.monotonic() < deadline:
    time.sleep(0.2)
    job = client.get(f"/api/jobs/{job['job']}").json()
    seen.append(job["done"])
  assert job["state"] == "done" and job["done"] == 10, job
  assert seen == sorted(seen)                            # progress only goes forward
  r = client.get(f"/api/jobs/{job['job']}/result")
  assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
  assert r.headers["x-model"] == "cartoon" and r.headers["x-frames"] == "10"
  (tmp_path / "out.mp4").write_bytes(r.content)
  with av.open(str(tmp_path / "out.mp4")) as c:
    got = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
  assert len(got) == 10 and got[0].shape == (48, 64, 3)
  assert np.abs(got[3].astype(int) - frames[3]).mean() > 1       # coloured, not the input
  # the job and its files are gone once the result is fetched
  assert client.get(f"/api/jobs/{job['job']}").status_code == 404
  assert os.listdir(tmp_path / "tmp") == []


def test_bad_videos_are_refused_and_leave_no_files(client, tmp_path, monkeypatch):
  pytest.importorskip("av", reason="PyAV (video extra) is not installed")
  monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
  message = error_of(client.post("/api/video?model=movie", content=b"not a video at all" * 50), 415)
  assert message.startswith("not a video FFmpeg can read")
  assert "empty upload" in error_of(client.post("/api/video?model=movie", content=b""), 400)
  assert "temporal" in error_of(client.post("/api/video?model=movie&temporal=2", content=b"x"), 422)
  assert os.listdir(tmp_path) == []


def test_a_cancelled_video_job_goes_away_with_its_files(client, tmp_path, monkeypatch):
  pytest.importorskip("av", reason="PyAV (video extra) is not installed")
  monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
  os.makedirs(tmp_path / "tmp")
  tiny_video(tmp_path / "clip.mp4", frames=30)
  job = client.post("/api/video?model=movie", content=(tmp_path / "clip.mp4").read_bytes()).json()
  assert client.delete(f"/api/jobs/{job['job']}").json() == {"job": job["job"], "cancelled": True}
  deadline = time.monotonic() + 300
  while client.get(f"/api/jobs/{job['job']}").status_code != 404 and time.monotonic() < deadline:
    time.sleep(0.2)
  assert client.get(f"/api/jobs/{job['job']}").status_code == 404
  assert os.listdir(tmp_path / "tmp") == []
