"""Colorizing real-world inputs: any size and mode, lightness kept, the command and the API agree.

The checkpoint is a randomly initialised tiny generator written with `checkpoints.save` (no
training: these tests check geometry, lightness, saturation, file handling, not colour
quality). Its weights are He-initialised from NumPy, which is much faster than running
`init_state` op by op, and gives vivid, spatially varying ab so that saturation and gamut
handling are really exercised.
"""
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from skimage import color as skcolor

from colorjax import checkpoints, config_lib, inference

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def smooth_rgb(h: int, w: int) -> np.ndarray:
  """A smooth, in-gamut colour image, uint8 [h, w, 3]."""
  yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w], np.float64)[:, None, None]
  rgb = np.stack([0.15 + 0.7 * xx, 0.2 + 0.6 * yy, 0.8 - 0.6 * xx * yy], axis=-1)
  return np.round(rgb * 255).astype(np.uint8)


def lightness(rgb_uint8: np.ndarray) -> np.ndarray:
  return skcolor.rgb2lab(rgb_uint8[..., :3] / 255.0)[..., 0]


@pytest.mark.device
@pytest.mark.parametrize("h,w", [(480, 854), (500, 500), (1001, 37)])
def test_output_has_the_input_size(colorizer, h, w):
  out = colorizer(smooth_rgb(h, w)[..., 0])
  assert out.shape == (h, w, 3) and out.dtype == np.uint8


def test_too_small_images_are_refused(colorizer):
  with pytest.raises(ValueError, match=r"too small: 1×1 px"):
    colorizer(np.zeros((1, 1), np.uint8))
  with pytest.raises(ValueError, match=r"too small: 9×1 px"):
    colorizer(np.zeros((1, 9, 3), np.uint8))


def test_bad_arrays_and_settings_are_refused(colorizer, run_dir):
  with pytest.raises(ValueError, match=r"in \[0, 1\]"):
    colorizer(np.full((8, 8), 2.0))
  with pytest.raises(ValueError, match="dtype int32"):
    colorizer(np.zeros((8, 8), np.int32))
  with pytest.raises(ValueError, match="shape"):
    colorizer(np.zeros((8, 8, 5), np.uint8))
  with pytest.raises(ValueError, match="saturation"):
    colorizer(np.zeros((8, 8), np.uint8), saturation=-1)
  with pytest.raises(ValueError, match="render_size=48: must be a positive multiple of 32"):
    inference.load(run_dir, render_size=48)


@pytest.mark.device
@pytest.mark.parametrize("saturation", [1.0, 3.0])
def test_output_lightness_equals_input_lightness(colorizer, saturation):
  """Full resolution, colour input: only 8-bit rounding separates the two L* maps.

  saturation 3 pushes many pixels out of the sRGB gamut: they are desaturated towards the
  grey of the same luminance, so L* is kept there too.
  """
  img = smooth_rgb(480, 854)
  out = colorizer(img, saturation=saturation)
  assert np.abs(lightness(out) - lightness(img)).max() < 0.5
  chroma = np.hypot(*np.moveaxis(skcolor.rgb2lab(out / 255.0)[..., 1:], -1, 0))
  assert chroma.mean() > 10                  # really coloured, not a grey copy


def test_lightness_of_16_bit_input_is_used_at_full_precision(colorizer, tmp_path):
  ramp = np.tile(np.linspace(0, 65535, 300).round().astype(np.uint16), (40, 1))
  path = tmp_path / "ramp16.png"
  Image.fromarray(ramp).save(path)           # a 16-bit greyscale PNG
  with Image.open(path) as im:
    assert im.mode.startswith("I")
  out = colorizer(str(path))
  expected = skcolor.rgb2lab(np.repeat((ramp / 65535.0)[..., None], 3, axis=-1))[..., 0]
  assert out.shape == (40, 300, 3)
  assert np.abs(lightness(out) - expected).max() < 0.5


def test_saturation_zero_gives_grey(colorizer):
  out = colorizer(smooth_rgb(120, 200), saturation=0)
  spread = out.astype(int).max(axis=-1) - out.astype(int).min(axis=-1)
  assert spread.max() <= 1


def test_modes_grey_rgb_rgba_palette(colorizer):
  rgb = smooth_rgb(50, 70)
  grey = Image.fromarray(rgb).convert("L")
  alpha = np.tile(np.arange(70, dtype=np.uint8) * 3, (50, 1))
  rgba = np.dstack([rgb, alpha])
  palette = Image.fromarray(rgb).quantize(64)
  assert palette.mode == "P"

  from_grey = colorizer(grey)
  assert from_grey.shape == (50, 70, 3)
  assert np.abs(lightness(from_grey) - lightness(np.asarray(grey.convert("RGB")))).max() < 0.5
  # A colour input is reduced to its L* first: colour or grey version, same result.
  assert np.abs(colorizer(rgb).astype(int) - colorizer(rgb.astype(np.float32) / 255)).max() <= 1
  out_rgba = colorizer(Image.fromarray(rgba))
  assert out_rgba.shape == (50, 70, 4)
  np.testing.assert_array_equal(out_rgba[..., 3], alpha)
  np.testing.assert_array_equal(out_rgba[..., :3], colorizer(rgb))
  out_p = colorizer(palette)
  assert out_p.shape == (50, 70, 3)
  assert np.abs(lightness(out_p) - lightness(np.asarray(palette.convert("RGB")))).max() < 0.5


def test_exif_rotated_file_comes_out_upright(colorizer, tmp_path):
  img = Image.fromarray(smooth_rgb(40, 64))   # stored 64 wide, 40 high
  exif = Image.Exif()
  exif[0x0112] = 6                            # "rotate 90° clockwise to display"
  path = tmp_path / "rotated.jpg"
  img.save(path, exif=exif)
  assert colorizer(str(path)).shape == (64, 40, 3)
  with Image.open(path) as im:
    assert colorizer(im).shape == (64, 40, 3)


def test_compiles_once_per_bucket(run_dir):
  import colorjax
  with pytest.raises(checkpoints.CheckpointError, match="no checkpoint at step 7"):
    colorjax.load(run_dir, step=7)
  fresh = colorjax.load(run_dir, step=1)
  assert fresh.step == 1 and fresh.render_size == 32
  frames = [smooth_rgb(480, 854), smooth_rgb(470, 850), smooth_rgb(480, 854)]
  outs = fresh.many(frames, batch_size=4)
  assert [o.shape[:2] for o in outs] == [(480, 854), (470, 850), (480, 854)]
  assert fresh.compiled_shapes == ((4, 32, 64, 1),)   # one bucket, one batch shape


def _write_folder(folder):
  """Two good images in a tree, a corrupt .png, a non-image text file."""
  os.makedirs(folder / "sub")
  Image.fromarray(smooth_rgb(48, 80)).save(folder / "a.png")
  Image.fromarray(smooth_rgb(60, 40)).convert("L").save(folder / "sub" / "b.jpg", quality=95)
  (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
  (folder / "notes.txt").write_text("not an image")


def test_command_skips_a_corrupt_file_and_does_the_others(run_dir, tmp_path, capsys):
  src, out = tmp_path / "frames", tmp_path / "out"
  _write_folder(src)
  code = inference.colorize_cli(run_dir, [str(src)], str(out))
  printed = capsys.readouterr().out
  assert code == 1
  assert "colorized 2, skipped 1" in printed
  assert f"skipped {src / 'broken.png'}:" in printed
  assert Image.open(out / "a.png").size == (80, 48)
  assert Image.open(out / "sub" / "b.jpg").size == (40, 60)
  assert not (out / "broken.png").exists() and not (out / "notes.txt").exists()


def test_command_usage_errors_and_never_overwrites(run_dir, tmp_path, capsys):
  with pytest.raises(config_lib.ConfigError, match="--input"):
    inference.colorize_cli(run_dir, [], str(tmp_path / "out"))
  with pytest.raises(config_lib.ConfigError, match="--output"):
    inference.colorize_cli(run_dir, [str(tmp_path)], None)
  src = tmp_path / "frames"
  src.mkdir()
  Image.fromarray(smooth_rgb(32, 32)).save(src / "a.png")
  Image.fromarray(smooth_rgb(32, 32)).save(src / "b.jpg")
  before = (src / "a.png").read_bytes()
  with pytest.raises(config_lib.ConfigError, match="nothing to colorize"):
    inference.colorize_cli(run_dir, [str(src)], str(src))
  assert "would overwrite the input" in capsys.readouterr().err
  assert (src / "a.png").read_bytes() == before
  # b.jpg → b.png would be fine, but a.png → a.png is the input itself: skipped, exit 1.
  code = inference.colorize_cli(run_dir, [str(src / "*.jpg"), str(src / "a.png")], str(src),
                                fmt="png")
  assert code == 1 and (src / "b.png").exists() and (src / "a.png").read_bytes() == before


@pytest.mark.device
def test_command_and_api_give_the_same_pixels(colorizer, run_dir, tmp_path):
  src, out = tmp_path / "in", tmp_path / "out"
  _write_folder(src)
  os.remove(src / "broken.png")
  Image.fromarray(np.dstack([smooth_rgb(30, 50), np.full((30, 50), 200, np.uint8)])).save(
      src / "sub" / "c.png")
  # From the user's own folder: relative paths are theirs, the default config is found.
  result = subprocess.run(
      [sys.executable, os.path.join(ROOT, "launch.py"), "--mode=colorize",
       f"--workdir={run_dir}", "--input=in", "--output=out", "--saturation=1.5"],
      cwd=tmp_path, capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "colorized 3, skipped 0" in result.stdout
  for rel in ("a.png", "sub/c.png"):
    written = np.asarray(Image.open(out / rel))
    np.testing.assert_array_equal(written, colorizer(str(src / rel), saturation=1.5))
  assert np.asarray(Image.open(out / "sub" / "c.png")).shape == (30, 50, 4)


def test_command_reports_a_missing_run_as_a_usage_error(tmp_path):
  Image.fromarray(smooth_rgb(32, 32)).save(tmp_path / "a.png")
  result = subprocess.run(
      [sys.executable, "launch.py", "--mode=colorize", f"--workdir={tmp_path / 'nope'}",
       f"--input={tmp_path}", f"--output={tmp_path / 'out'}"],
      cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert result.returncode == 2
  assert result.stderr.strip().splitlines()[-1].startswith("error: ")


def test_lab_tiff_has_no_alpha_and_a_missing_file_says_so(colorizer, tmp_path):
  Image.fromarray(smooth_rgb(20, 30)).convert("LAB").save(tmp_path / "lab.tif")
  assert colorizer(str(tmp_path / "lab.tif")).shape == (20, 30, 3)   # LAB's "A" is a*
  for wrong in (b"\x89PNG", None):
    with pytest.raises(ValueError, match="expected a file path, a PIL image or an array, got"):
      colorizer(wrong)
  from colorjax.data import decode
  with pytest.raises(decode.BadImage, match=r"missing\.png: cannot read \(no such file\)"):
    colorizer(str(tmp_path / "missing.png"))


def test_command_refuses_an_image_file_name_as_output(tmp_path):
  Image.fromarray(smooth_rgb(32, 32)).save(tmp_path / "a.png")
  result = subprocess.run(
      [sys.executable, os.path.join(ROOT, "launch.py"), "--mode=colorize",
       f"--workdir={tmp_path / 'no_run'}", "--input=a.png", "--output=result.png"],
      cwd=tmp_path, capture_output=True, text=True, timeout=120)
  assert result.returncode == 2
  assert result.stderr.strip() == ("error: --output=result.png: the folder to write the colour "
                                   "images to, not a file name")
  assert sorted(os.listdir(tmp_path)) == ["a.png"]
