"""Colour hints at inference: propagation, geometry, files, the Colorizer and the command.

The checkpoint is a randomly initialised tiny generator (as in test_inference.py): its
colours are vivid noise, so a hint that comes through is really the hint's doing.
"""
import json
import os
import subprocess
import sys
import types

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image
from skimage import color as skcolor

from colorjax import cli, color, hints, inference

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RED = (200, 40, 40)        # sRGB; its a*b* are what a hint carries


def _lab(rgb_uint8):
  return skcolor.rgb2lab(np.asarray(rgb_uint8)[..., :3] / 255.0)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
  from conftest import save_random_run
  return save_random_run(str(tmp_path_factory.mktemp("run")), **{"model.hints": False})  # automatic



def grey_image(h, w, lightness=None):
  """A uint8 grey image of the given L* (default: the L* of RED, so RED is in gamut)."""
  L = _lab(np.array(RED, np.uint8))[0] if lightness is None else lightness
  v = skcolor.lab2rgb(np.array([[[L, 0.0, 0.0]]]))[0, 0, 0]
  return np.full((h, w), round(v * 255), np.uint8)


# --- propagation ---------------------------------------------------------------------------


def two_regions(h=48, w=64):
  """L* 30 on the left half, 70 on the right, with mild noise (a real edge, textured flats)."""
  L = np.full((h, w), 30.0, np.float32)
  L[:, w // 2:] = 70.0
  return L + np.random.default_rng(0).normal(0, 0.5, L.shape).astype(np.float32)


def test_a_hint_fills_its_flat_region_and_stops_at_the_edge():
  L = two_regions()
  hint_ab, mask = np.zeros(L.shape + (2,), np.float32), np.zeros(L.shape, np.float32)
  hint_ab[20:23, 8:11], mask[20:23, 8:11] = (40.0, 20.0), 1.0
  out = hints.propagate(L, hint_ab, mask)                  # grey prior
  left, right = out[:, :32], out[:, 32:]
  assert np.abs(left - (40.0, 20.0)).max() < 6             # the whole left half, corners too
  assert np.abs(right).max() < 2                           # (almost) nothing across the edge
  # Over a prior: the right half keeps the prior, the left half takes the hint.
  prior = np.broadcast_to(np.array([-30.0, 10.0], np.float32), out.shape)
  over = hints.propagate(L, hint_ab, mask, prior_ab=prior)
  assert np.abs(over[:, 32:] - prior[:, 32:]).max() < 0.5
  assert np.abs(over[:, :32] - (40.0, 20.0)).max() < 6


def test_no_hint_returns_the_prior_exactly_and_colours_do_not_overshoot():
  L = two_regions()
  prior = np.random.default_rng(1).normal(0, 30, L.shape + (2,)).astype(np.float32)
  empty = np.zeros(L.shape, np.float32)
  np.testing.assert_array_equal(hints.propagate(L, np.zeros_like(prior), empty, prior), prior)
  hint_ab, mask = np.zeros_like(prior), empty.copy()
  hint_ab[5, 5], mask[5, 5] = (50.0, -40.0), 1.0
  hint_ab[40, 50], mask[40, 50] = (-20.0, 30.0), 1.0
  out = hints.propagate(L, hint_ab, mask, prior)
  for c in range(2):                                       # maximum principle, per channel
    values = np.concatenate([hint_ab[mask > 0][:, c], prior[..., c].ravel()])
    assert values.min() - 1e-3 <= out[..., c].min() and out[..., c].max() <= values.max() + 1e-3


def test_a_hint_replaces_a_noisy_prior_in_its_region():
  """The model's blotchy colours do not survive around a hint: its region takes the hint's
  colour (not the prior plus a smooth correction); where it does not reach, the prior stays."""
  L = two_regions()
  prior = np.random.default_rng(2).normal(0, 20, L.shape + (2,)).astype(np.float32)
  hint_ab, mask = np.zeros_like(prior), np.zeros(L.shape, np.float32)
  hint_ab[20:23, 8:11], mask[20:23, 8:11] = (40.0, 20.0), 1.0
  out = hints.propagate(L, hint_ab, mask, prior)
  assert np.abs(out[:, :32] - (40.0, 20.0)).mean() < 2     # prior's noise: mean |.| ≈ 16
  assert np.abs(out[:, 32:] - prior[:, 32:]).max() < 1     # across the edge: the prior, kept


# --- geometry ------------------------------------------------------------------------------


def test_to_bucket_is_centre_aligned():
  # 101 → 96 columns, 37 → 32 rows: x_b = (x + 0.5)·96/101 − 0.5, to the nearest pixel.
  xb, yb = hints.to_bucket([0, 20, 100], [0, 17, 36], 37, 101, (32, 96))
  assert xb.tolist() == [0, 19, 95] and yb.tolist() == [0, 15, 31]


def test_a_hint_lands_on_the_bucket_pixel_the_image_resize_puts_it(colorizer):
  """Odd sizes: a bright dot at (x, y) and a hint at (x, y) meet at the same bucket pixel."""
  h, w = 37, 101
  bucket = inference.bucket_shape(h, w, colorizer.render_size)
  assert bucket == (32, 96)
  rng = np.random.default_rng(0)
  checked = 0
  for x, y in [(0, 0), (100, 36), (50, 3)] + [tuple(v) for v in rng.integers(0, (w, h), (20, 2))]:
    xb = (x + 0.5) * bucket[1] / w - 0.5
    yb = (y + 0.5) * bucket[0] / h - 0.5
    if min(abs(xb % 1 - 0.5), abs(yb % 1 - 0.5)) < 0.15:
      continue                                             # near a tie: both neighbours valid
    img = np.full((h, w), 40, np.uint8)
    img[y, x] = 255
    small = colorizer.bucket_lightness(inference.prepare(img))
    _, mask = colorizer.hint_maps(inference.prepare(img), [(x, y, RED)], patch=1)
    assert np.argwhere(mask > 0).tolist() == [list(np.unravel_index(small.argmax(), bucket))]
    checked += 1
  assert checked >= 8


# --- the colorizer -------------------------------------------------------------------------


def test_colorizer_paints_the_hint_colour_around_the_click_and_keeps_lightness(colorizer):
  h, w = 61, 87                                            # odd sizes
  img = grey_image(h, w)
  x, y = 30, 40
  out = colorizer(img, hints=[(x, y, RED)])
  lab_out, want = _lab(out), _lab(np.array(RED, np.uint8))
  near = lab_out[y - 2:y + 3, x - 2:x + 3, 1:]
  assert np.abs(near - want[1:]).max() < 4                 # a*b* of the hint colour
  assert np.abs(lab_out[..., 0] - _lab(np.dstack([img] * 3))[..., 0]).max() < 0.5
  # hex and (r, g, b) are the same colour; without hints the model's own colours come back
  same = colorizer(img, hints=[(x, y, "#{:02x}{:02x}{:02x}".format(*RED))])
  np.testing.assert_array_equal(same, out)
  np.testing.assert_array_equal(colorizer(img, hints=[]), colorizer(img))
  assert np.abs(_lab(colorizer(img))[y - 2:y + 3, x - 2:x + 3, 1:] - want[1:]).max() > 10


def test_many_takes_one_hint_list_per_image(colorizer):
  a, b = grey_image(40, 50), grey_image(40, 50)
  outs = colorizer.many([a, b], batch_size=2, hints=[[(10, 10, RED)], None])
  want = _lab(np.array(RED, np.uint8))[1:]
  assert np.abs(_lab(outs[0])[9:12, 9:12, 1:] - want).max() < 4
  np.testing.assert_array_equal(outs[1], colorizer.many([a, b], batch_size=2)[1])
  with pytest.raises(ValueError, match="one list of hints per image"):
    colorizer.many([a, b], hints=[[(10, 10, RED)]])
  ab = colorizer.predict([inference.prepare(a)], hints=[[(10, 10, RED)]])[0]
  assert ab.shape == colorizer.bucket(inference.prepare(a)) + (2,) and ab.dtype == np.float32
  assert colorizer.checkpoint_info["takes_hints"] is False


BAD_HINTS = [
    ((64, 5, "#ff0000"), r"hint 0 \(64, 5, '#ff0000'\): \(64, 5\) is outside the 64×48 image"),
    ((3, -1, "#ff0000"), r"hint 0 .*outside the 64×48 image"),
    ((3, 4, "#ff00"), r"hint 0 .*colour '#ff00': expected '#rrggbb'"),
    ((3, 4, (255, 0, 300)), r"hint 0 .*colour \(255, 0, 300\)"),
    ((3, 4, (True, 0, 0)), r"hint 0 .*colour \(True, 0, 0\): expected"),
    ((3, 4, "#ff0000", 0), r"hint 0 .*patch=0 must be a positive integer"),
    (("a", 4, "#ff0000"), r"hint 0 .*x and y must be numbers"),
    ((3, 4), r"hint 0 \(3, 4\): expected \(x, y, colour\)"),
]


@pytest.mark.parametrize("bad,message", BAD_HINTS)
def test_bad_hints_are_one_line_errors_naming_the_hint(colorizer, bad, message):
  with pytest.raises(hints.HintError, match=message) as info:
    colorizer(grey_image(48, 64), hints=[bad])
  assert "\n" not in str(info.value)


def test_hint_index_is_named_and_the_model_does_not_run_for_bad_hints(colorizer):
  with pytest.raises(hints.HintError, match=r"^hint 1 \(9, 99, '#00ff00'\)"):
    colorizer(grey_image(48, 64), hints=[(1, 1, "#ff0000"), (9, 99, "#00ff00")])


# --- hint files ----------------------------------------------------------------------------


def scribble_png(path, h, w, box, rgb=RED):
  rgba = np.zeros((h, w, 4), np.uint8)
  rgba[box[0]:box[1], box[2]:box[3]] = (*rgb, 255)
  Image.fromarray(rgba).save(path)


def test_json_points_and_scribble_files(colorizer, tmp_path):
  h, w = 48, 64
  points = [{"x": 10, "y": 12, "colour": "#c82828"}, [40, 30, list(RED)], [5, 40, "#2040c0", 1]]
  (tmp_path / "p.json").write_text(json.dumps(points))
  loaded = hints.load_hint_file(str(tmp_path / "p.json"), h, w)
  assert [(p.x, p.y, p.patch) for p in loaded] == [(10, 12, 3), (40, 30, 3), (5, 40, 1)]
  img = grey_image(h, w)
  np.testing.assert_array_equal(colorizer(img, hints=loaded),
                                colorizer(img, hints=[(10, 12, "#c82828"), (40, 30, RED),
                                                      (5, 40, "#2040c0", 1)]))
  scribble_png(tmp_path / "s.png", h, w, (20, 28, 30, 40))
  sc = hints.load_hint_file(str(tmp_path / "s.png"), h, w)
  assert isinstance(sc, hints.Scribble) and sc.mask.sum() == 80
  out = _lab(colorizer(img, hints=sc))
  assert np.abs(out[21:27, 31:39, 1:] - _lab(np.array(RED, np.uint8))[1:]).max() < 4


@pytest.mark.parametrize("name,content,message", [
    ("bad.json", "[{\"x\": 1, \"y\": 2, \"colour\": \"#12345\"}]", r"bad.json: hint 0 .*colour"),
    ("far.json", "[[1, 2, \"#ff0000\"], [70, 2, \"#ff0000\"]]", r"far.json: hint 1 .*outside"),
    ("broken.json", "[[1, 2,", r"broken.json: not valid JSON"),
    ("dict.json", "{\"x\": 1}", r"dict.json: expected a JSON list of points"),
    ("big.png", None, r"big.png: scribble is 65×48 px, the image is 64×48"),
    ("rgb.png", None, r"rgb.png: a scribble must be an RGBA PNG"),
    ("notes.txt", "hello", r"notes.txt: hint files are .json"),
])
def test_bad_hint_files(tmp_path, name, content, message):
  path = tmp_path / name
  if name == "big.png":
    scribble_png(path, 48, 65, (0, 2, 0, 2))
  elif name == "rgb.png":
    Image.fromarray(grey_image(48, 64)).convert("RGB").save(path)
  else:
    path.write_text(content)
  with pytest.raises(hints.HintError, match=message) as info:
    hints.load_hint_file(str(path), 48, 64)
  assert "\n" not in str(info.value)


def _flags(**kw):
  base = dict(workdir=None, input=[], output=None, saturation=1.0, format=None, step=None,
              hints=None)
  base.update(kw)
  return types.SimpleNamespace(**base)


@pytest.mark.parametrize("name,content,message", [
    ("bad.json", "[[1, 2, \"red\"]]", r"^error: --hints: .*bad.json: hint 0 \[1, 2, \"red\"\]: "
                                      r"colour 'red': expected"),
    ("far.json", "[[64, 2, \"#ff0000\"]]", r"^error: --hints: .*far.json: hint 0 .*outside the "
                                           r"64×48 image"),
    ("missing.json", None, r"^error: --hints=.*missing.json: no such file or directory"),
])
def test_command_reports_bad_hints_as_usage_errors(run_dir, tmp_path, capsys, name, content,
                                                   message):
  Image.fromarray(grey_image(48, 64)).save(tmp_path / "a.png")
  if content is not None:
    (tmp_path / name).write_text(content)
  code = cli.run("colorize", None, _flags(workdir=run_dir, input=[str(tmp_path / "a.png")],
                                           output=str(tmp_path / "out"),
                                           hints=str(tmp_path / name)))
  err = capsys.readouterr().err.strip().splitlines()
  assert code == 2 and len(err) == 1 and err[0].startswith("error: ")
  assert __import__("re").search(message, err[0]), err[0]
  assert not (tmp_path / "out" / "a.png").exists()


def test_launch_colorize_with_a_hint_folder(colorizer, run_dir, tmp_path):
  """Through launch.py: a folder of hint files by stem; an image without one gets none."""
  src, hint_dir, out = tmp_path / "in", tmp_path / "hints", tmp_path / "out"
  src.mkdir(), hint_dir.mkdir()
  Image.fromarray(grey_image(48, 64)).save(src / "a.png")
  Image.fromarray(grey_image(40, 30)).save(src / "b.png")
  (hint_dir / "a.json").write_text(json.dumps([[20, 25, list(RED)]]))
  result = subprocess.run(
      [sys.executable, "launch.py", "--mode=colorize", f"--workdir={run_dir}", f"--input={src}",
       f"--output={out}", f"--hints={hint_dir}"],
      cwd=ROOT, capture_output=True, text=True, timeout=180)
  assert result.returncode == 0, result.stderr[-2000:]
  a = np.asarray(Image.open(out / "a.png"))
  np.testing.assert_array_equal(a, colorizer(str(src / "a.png"), hints=[(20, 25, RED)]))
  np.testing.assert_array_equal(np.asarray(Image.open(out / "b.png")), colorizer(str(src / "b.png")))
  # A bad hint file: one line naming the file and the hint, exit 2, nothing written.
  (hint_dir / "b.json").write_text(json.dumps([[30, 5, "#ff0000"]]))
  result = subprocess.run(
      [sys.executable, "launch.py", "--mode=colorize", f"--workdir={run_dir}", f"--input={src}",
       f"--output={tmp_path / 'out2'}", f"--hints={hint_dir}"],
      cwd=ROOT, capture_output=True, text=True, timeout=180)
  assert result.returncode == 2
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("error: --hints: ") and "b.json: hint 0 [30, 5, \"#ff0000\"]" in last
  assert "outside the 30×40 image" in last and not (tmp_path / "out2").exists()


# --- sampling from the truth ---------------------------------------------------------------


def test_sample_from_truth_is_seeded_nested_and_averages_the_patch():
  ab = np.random.default_rng(0).normal(0, 20, (40, 50, 2)).astype(np.float32)
  s10 = hints.sample_from_truth(ab, 10, np.random.default_rng(7), patch=3)
  s5 = hints.sample_from_truth(ab, 5, np.random.default_rng(7), patch=3)
  np.testing.assert_array_equal(s10.xy[:5], s5.xy)
  again = hints.sample_from_truth(ab, 10, np.random.default_rng(7), patch=3)
  np.testing.assert_array_equal(again.hint_ab, s10.hint_ab)
  x, y = s5.xy[-1]
  window = ab[max(y - 1, 0):y + 2, max(x - 1, 0):x + 2].reshape(-1, 2).mean(0)
  np.testing.assert_allclose(s5.hint_ab[y, x], window, rtol=1e-5)
  assert 0 < s10.mask.sum() <= 90 and hints.sample_from_truth(ab, 0, np.random.default_rng(7)).mask.sum() == 0


def test_colour_ab_matches_colorjax_color():
  a, b = hints.colour_ab("#3366cc")
  lab = color.rgb_to_lab(np.array([0x33, 0x66, 0xcc]) / 255.0)
  assert (a, b) == pytest.approx((lab[1], lab[2]), abs=1e-4)
  assert hints.colour_ab((51, 102, 204)) == pytest.approx((a, b))


def test_a_hint_model_reads_the_hint_channels_then_propagates(tmp_path):
  """config.model.hints=True: the generator gets (a/110, b/110, mask) besides L, and the
  hints are then propagated over its output."""
  from conftest import save_random_run
  model = inference.load(save_random_run(str(tmp_path), **{"model.hints": True}))
  assert model.checkpoint_info["takes_hints"] is True
  img = inference.prepare(grey_image(40, 56))
  points = [(20, 15, RED)]
  maps = model.hint_maps(img, points)
  L = (model.bucket_lightness(img) / 50.0 - 1.0)[None, ..., None].astype(np.float32)
  with_hints = model._predict(L, hints.model_hint_input(*maps)[None])
  without = model._predict(L, np.zeros(L.shape[:3] + (3,), np.float32))
  assert np.abs(with_hints - without).max() > 1e-3          # the hint channels reach the model
  ab = model.predict([img], hints=[points])[0]
  np.testing.assert_allclose(ab, hints.propagate(model.bucket_lightness(img), *maps,
                                                 prior_ab=with_hints[0] * 110.0), atol=1e-3)
  np.testing.assert_array_equal(model.predict([img])[0], without[0] * np.float32(110.0))


def test_hint_curve_improves_with_hints_on_piecewise_colour_images():
  """benchmarks/hints_latency.hint_curve (reused by the hint evaluation) on synthetic images:
  flat colour regions with distinct lightness, so a few true-colour points recover them."""
  from benchmarks.hints_latency import hint_curve
  rng = np.random.default_rng(0)
  images = []
  for _ in range(2):
    lab = np.zeros((64, 64, 3), np.float64)
    for y0, y1, x0, x1 in [(0, 32, 0, 32), (0, 32, 32, 64), (32, 64, 0, 64)]:
      lab[y0:y1, x0:x1] = (rng.uniform(30, 80), *rng.uniform(-40, 40, 2))
    images.append(skcolor.lab2rgb(lab).astype(np.float32))
  curve = hint_curve(images, counts=(0, 10))
  assert curve[10]["psnr"] > curve[0]["psnr"] + 5
  assert curve[10]["delta_e"] < 0.5 * curve[0]["delta_e"]


def test_guide_is_propagation_over_grey_with_its_reach():
  """What a hint model reads: the sparse hints spread as `propagate` spreads them over grey,
  plus the reach (1 in the hinted region, 0 across the edge); zero hints give zero."""
  L = two_regions()
  hint_ab, mask = np.zeros(L.shape + (2,), np.float32), np.zeros(L.shape, np.float32)
  hint_ab[20:23, 8:11], mask[20:23, 8:11] = (40.0, 20.0), 1.0
  sparse = hints.model_hint_input(hint_ab, mask)[None]
  L_norm = (L / 50.0 - 1.0)[None, ..., None]
  g = np.asarray(hints.guide(jnp.asarray(L_norm), jnp.asarray(sparse)))[0]
  np.testing.assert_allclose(g[..., :2] * 110.0, hints.propagate(L, hint_ab, mask), atol=0.05)
  assert g[:, :32, 2].min() > 0.9 and g[:, 32:, 2].max() < 0.05
  zero = hints.guide(jnp.asarray(L_norm), jnp.zeros_like(jnp.asarray(sparse)))
  np.testing.assert_array_equal(np.asarray(zero), 0.0)
