"""The web app in a real browser: Playwright driving Debian's Chromium (never a downloaded one).

One browser session against `launch.py --mode=serve` (a tiny three-model study) on a free
loopback port, with every request that is not to the server's own origin aborted and
recorded: the tests assert none was attempted, so the page loads and works offline. They
upload a grey image, download the full-resolution PNG, check the input's lightness in it;
pick a colour, click a point, and check that colour around the click; show the three models
side by side (the README's docs/app.png, see `screenshot`); and check a bad upload is a message on the page.
"""
import io
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image
from skimage import color as skcolor

from app_helpers import STEPS, make_study

CHROMIUM = "/usr/bin/chromium"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
HINT = "#b4463c"            # the colour picked on the page (L* ≈ 47)

if not os.path.exists(CHROMIUM):
  pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium); browser tests skipped",
              allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (test extra) not installed")
pytest.importorskip("fastapi", reason="the app extra (fastapi) is not installed")


def lab(rgb: np.ndarray) -> np.ndarray:
  return skcolor.rgb2lab(rgb[..., :3] / 255.0)


def flat_and_gradient(h=96, w=144) -> tuple[np.ndarray, tuple[int, int]]:
  """Grey uint8: a flat left part at the hint's L* (where we click), a gradient on the right."""
  hint_l = lab(np.array([[[int(HINT[i:i + 2], 16) for i in (1, 3, 5)]]], np.uint8))[0, 0, 0]
  flat = int(np.argmin([abs(lab(np.full((1, 1, 3), v, np.uint8))[0, 0, 0] - hint_l)
                        for v in range(256)]))
  a = np.empty((h, w), np.uint8)
  a[:, : w // 2] = flat
  a[:, w // 2:] = np.linspace(30, 230, w - w // 2).astype(np.uint8)
  return a, (w // 4, h // 2)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
  """`launch.py --mode=serve --port=0` on a tiny study; yields its URL (printed by the command)."""
  study = make_study(str(tmp_path_factory.mktemp("study")))
  proc = subprocess.Popen(
      [sys.executable, os.path.join(ROOT, "launch.py"), "--mode=serve", f"--workdir={study}",
       "--port=0"], cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  url, lines, deadline = None, [], time.monotonic() + 240
  while url is None and time.monotonic() < deadline:
    line = proc.stdout.readline()
    if not line:
      break
    lines.append(line)
    m = re.search(r"colorjax app: (http://127\.0\.0\.1:\d+/)", line)
    url = m.group(1) if m else None
  if url is None:
    proc.kill()
    pytest.fail("the server printed no URL:\n" + "".join(lines))
  try:
    yield url
  finally:
    proc.send_signal(signal.SIGINT)          # Ctrl+C: uvicorn shuts down cleanly
    try:
      assert proc.wait(60) == 0
    finally:
      if proc.poll() is None:
        proc.kill()


@pytest.fixture(scope="module")
def browser(server, tmp_path_factory):
  """Chromium with a fresh profile; every request not to the server's origin is aborted and
  recorded in `browser.foreign` (the tests assert it stays empty: the page works offline)."""
  origin = server.rstrip("/")
  foreign = []

  def only_loopback(route):
    url = route.request.url
    if url == origin or url.startswith(origin + "/") or url.startswith(("blob:", "data:")):
      route.continue_()
    else:
      foreign.append(url)
      route.abort()

  with sync_api.sync_playwright() as p:
    context = p.chromium.launch_persistent_context(
        str(tmp_path_factory.mktemp("profile")), executable_path=CHROMIUM, headless=True,
        args=ARGS, viewport={"width": 1100, "height": 760}, accept_downloads=True)
    context.route("**/*", only_loopback)
    context.foreign = foreign
    try:
      yield context
    finally:
      context.close()


def open_page(browser, server):
  """A new tab on the app; `page.csp` collects Content-Security-Policy violations (none allowed:
  a blocked image or video would be a broken page)."""
  page = browser.new_page()
  page.csp = []
  page.on("console", lambda m: page.csp.append(m.text) if "Content Security Policy" in m.text else None)
  page.goto(server)
  page.wait_for_selector("body[data-ready='1']", timeout=30_000)
  return page


def upload(page, tmp_path, grey: np.ndarray, model: str):
  path = tmp_path / "street.png"
  Image.fromarray(grey).save(path)
  page.select_option("#model", model)
  page.set_input_files("#file", str(path))
  page.wait_for_selector(f"#result-{model} img.after[data-hints='0']", timeout=120_000)


def download(page, model: str) -> np.ndarray:
  with page.expect_download() as d:
    page.click(f"#result-{model} a.download")
  assert d.value.suggested_filename == f"street-{model}-colorized.png"
  return np.asarray(Image.open(d.value.path()))


def side_by_side(page, hints: int):
  page.select_option("#model", "__all__")
  for name in STEPS:
    page.wait_for_selector(f"#result-{name} img.after[data-hints='{hints}']", timeout=120_000)
    assert f"{name} · checkpoint step {STEPS[name]}" in page.inner_text(f"#result-{name}")
  page.wait_for_selector("body[data-pending='0']")


def screenshot(page, tmp_path):
  """The README's screenshot: written to docs/app.png with COLORJAX_UPDATE_SCREENSHOT=1 (so a
  plain test run leaves the tracked file alone), else to the test's temp dir."""
  update = os.environ.get("COLORJAX_UPDATE_SCREENSHOT") == "1"
  path = os.path.join(ROOT, "docs", "app.png") if update else str(tmp_path / "app.png")
  os.makedirs(os.path.dirname(path), exist_ok=True)
  page.set_viewport_size({"width": 1100, "height": 200})     # full_page: just the content
  page.screenshot(path=path, full_page=True)
  page.set_viewport_size({"width": 1100, "height": 760})
  assert Image.open(path).size[0] == 1100


def hints_supported(server) -> bool:
  """Whether this build's Colorizer.predict takes hints (asked the server, not the page)."""
  import httpx
  buf = io.BytesIO()
  Image.fromarray(np.full((8, 8), 128, np.uint8)).save(buf, format="PNG")
  r = httpx.post(server + "api/colorize", content=buf.getvalue(), timeout=120,
                 params={"model": "movie", "hints": '[[1, 1, "#ff0000"]]'})
  return r.status_code == 200


def test_page_loads_colorizes_compares_and_refuses_offline(server, browser, tmp_path):
  page = open_page(browser, server)
  info = page.inner_text("#models-info")
  for name, step in STEPS.items():
    assert f"{name}: demo, checkpoint step {step}" in info
  grey, _ = flat_and_gradient()
  upload(page, tmp_path, grey, "movie")
  assert "movie · checkpoint step 4" in page.inner_text("#result-movie figcaption")
  assert page.locator("#result-movie img.before").get_attribute("src").startswith("blob:")
  result = download(page, "movie")
  assert result.shape == grey.shape + (3,)                      # full resolution
  got, want = lab(result), lab(np.stack([grey] * 3, -1))
  assert np.abs(got[..., 0] - want[..., 0]).max() < 1.0          # lightness kept (8-bit rounding)
  assert np.hypot(got[..., 1], got[..., 2]).mean() > 1.0         # and coloured
  side_by_side(page, hints=0)
  if not hints_supported(server):
    screenshot(page, tmp_path)
  # A file that is not an image: a message on the page, not a stack trace.
  bad = tmp_path / "notes.png"
  bad.write_text("not really a picture\n")
  page.set_input_files("#file", str(bad))
  page.wait_for_selector("#message:not([hidden])", timeout=30_000)
  message = page.inner_text("#message")
  assert message.startswith("notes.png: not an image") and "Traceback" not in message
  assert page.csp == [], page.csp
  page.close()
  assert browser.foreign == [], f"the page tried to reach other origins: {browser.foreign}"


def test_click_places_a_colour_hint(server, browser, tmp_path):
  if not hints_supported(server):
    pytest.skip("this build's Colorizer.predict takes no hints yet (branch hints-infer)")
  page = open_page(browser, server)
  grey, (cx, cy) = flat_and_gradient()
  upload(page, tmp_path, grey, "movie")
  page.fill("#colour", HINT)
  stage = page.locator("#result-movie .stage")
  box = stage.bounding_box()
  stage.click(position={"x": (cx + 0.5) / grey.shape[1] * box["width"],
                        "y": (cy + 0.5) / grey.shape[0] * box["height"]})
  page.wait_for_selector("#result-movie img.after[data-hints='1']", timeout=120_000)
  assert page.inner_text("#hints").startswith(f"({cx}, {cy}) {HINT}")
  result = download(page, "movie")
  assert result.shape == grey.shape + (3,)
  got, want = lab(result), lab(np.stack([grey] * 3, -1))
  # the image's lightness everywhere (8-bit rounding only) ...
  assert np.abs(got[..., 0] - want[..., 0]).max() < 1.0
  # ... and the picked colour around the click: a 5×5 window's a*b* at the hint's on average
  # and nowhere far off (its edge pixels are rendered from bilinearly upsampled chroma).
  hint_ab = lab(np.array([[[int(HINT[i:i + 2], 16) for i in (1, 3, 5)]]], np.uint8))[0, 0, 1:]
  window = got[cy - 2:cy + 3, cx - 2:cx + 3, 1:]
  assert np.abs(window.mean((0, 1)) - hint_ab).max() < 2.0, (window.mean((0, 1)), hint_ab)
  assert np.abs(window - hint_ab).max() < 8.0, (window.mean((0, 1)), hint_ab)
  # Every model of the study follows the hint; this view is the README's screenshot.
  side_by_side(page, hints=1)
  screenshot(page, tmp_path)
  # Removing the hint brings back the automatic result.
  page.click("#hints button")
  page.wait_for_selector("#result-cartoon img.after[data-hints='0']", timeout=120_000)
  assert page.csp == [], page.csp
  page.close()
  assert browser.foreign == [], f"the page tried to reach other origins: {browser.foreign}"


def test_short_video_is_coloured_with_progress(server, browser, tmp_path):
  av = pytest.importorskip("av", reason="PyAV (video extra) is not installed")
  path = tmp_path / "street.mp4"
  with av.open(str(path), "w") as c:
    s = c.add_stream("libx264", rate=12)
    s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
    for i in range(8):
      g = np.roll(np.tile(np.linspace(30, 220, 64).astype(np.uint8), (48, 1)), 3 * i, axis=1)
      c.mux(s.encode(av.VideoFrame.from_ndarray(np.stack([g] * 3, -1), format="rgb24")))
    c.mux(s.encode(None))
  page = open_page(browser, server)
  page.select_option("#model", "mixed")
  page.set_input_files("#file", str(path))
  page.wait_for_selector("#result-mixed[data-done='1']", timeout=180_000)
  assert "mixed · checkpoint step 5 · 8 frames" in page.inner_text("#result-mixed figcaption")
  # the player has the result (its metadata loaded: the page may show it)
  player, deadline = page.locator("#result-mixed video.after"), time.monotonic() + 30
  while player.evaluate("v => v.readyState") < 1 and time.monotonic() < deadline:
    time.sleep(0.2)
  assert player.evaluate("v => v.readyState") >= 1, page.csp
  with page.expect_download() as d:
    page.click("#result-mixed a.download")
  assert d.value.suggested_filename == "street-mixed-colorized.mp4"
  with av.open(d.value.path()) as c:
    frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
  assert len(frames) == 8 and frames[0].shape == (48, 64, 3)
  assert page.csp == [], page.csp
  page.close()
  assert browser.foreign == [], f"the page tried to reach other origins: {browser.foreign}"
