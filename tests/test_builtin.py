"""Built-in download-free domains: shapes, determinism, split separation, cartoon-ness."""
import subprocess
import sys

import numpy as np
import pytest

from colorjax.data import builtin

SIZES = (16, 32, 64, 256)


def _chroma(rgb):
  """Mean CIELab chroma (sqrt(a^2 + b^2)) of a uint8 RGB image."""
  from skimage.color import rgb2lab
  lab = rgb2lab(rgb)
  return float(np.hypot(lab[..., 1], lab[..., 2]).mean())


def _top_colour_coverage(rgb, k=16):
  """Fraction of pixels covered by the k most frequent exact colours."""
  _, counts = np.unique(rgb.reshape(-1, 3), axis=0, return_counts=True)
  return np.sort(counts)[::-1][:k].sum() / counts.sum()


@pytest.mark.parametrize("domain", builtin.DOMAINS)
@pytest.mark.parametrize("size", SIZES)
def test_shape_dtype_and_determinism(domain, size):
  for split in ("train", "test"):
    a = builtin.render(domain, 3, size, split)
    assert a.shape == (size, size, 3) and a.dtype == np.uint8
    assert np.array_equal(a, builtin.render(domain, 3, size, split))
    assert a.std() > 5    # not a blank frame


@pytest.mark.parametrize("domain", builtin.DOMAINS)
def test_default_split_is_train_and_unbounded(domain):
  assert np.array_equal(builtin.render(domain, 1, 32), builtin.render(domain, 1, 32, "train"))
  assert builtin.num_available(domain, "train") is None
  assert builtin.num_available(domain, "test") is None


@pytest.mark.parametrize("domain", builtin.DOMAINS)
def test_indices_and_splits_give_different_images(domain):
  train = [builtin.render(domain, i, 32, "train") for i in range(8)]
  test = [builtin.render(domain, i, 32, "test") for i in range(8)]
  for imgs in (train, test):
    for i in range(len(imgs)):
      for j in range(i + 1, len(imgs)):
        assert not np.array_equal(imgs[i], imgs[j]), (domain, i, j)
  for i in range(8):
    assert not np.array_equal(train[i], test[i]), (domain, i)


def test_same_scene_at_every_size():
  """The seed ignores the size: a small render is a downscaled big one (layout-wise)."""
  from PIL import Image
  big = builtin.render("toon", 5, 256)
  small = builtin.render("toon", 5, 64)
  down = np.asarray(Image.fromarray(big).resize((64, 64), Image.Resampling.BOX), np.float32)
  other = builtin.render("toon", 6, 64).astype(np.float32)
  err_same = np.abs(down - small).mean()
  assert err_same < 25 and err_same < np.abs(down - other).mean()


def test_photo_test_sources_are_held_out():
  def names(split):
    out = set()
    for entry in builtin.PHOTO_SOURCES[split]:
      out.update(entry if isinstance(entry, tuple) else (entry,))
    return out
  train, test = names("train"), names("test")
  assert train and test and not (train & test)
  for name in train | test:   # every source is a colour photo that loads offline
    im = builtin._photo(name)
    assert im.mode == "RGB" and min(im.size) >= 256
    arr = np.asarray(im, np.int16)
    assert np.abs(arr[..., 0] - arr[..., 2]).mean() > 5, name


@pytest.mark.parametrize("domain,min_chroma", [("toon", 25.0), ("photo", 12.0)])
def test_images_are_colourful(domain, min_chroma):
  for split in ("train", "test"):
    imgs = [builtin.render(domain, i, 64, split) for i in range(12)]
    assert np.mean([_chroma(x) for x in imgs]) > min_chroma, (domain, split)
    for x in imgs:  # no greyscale frame: some pixels have distinct channels
      spread = x.max(-1).astype(int) - x.min(-1)
      assert (spread > 20).mean() > 0.05, (domain, split)


def test_toon_has_ink_and_flat_colours():
  for i in range(12):
    canvas = np.asarray(builtin.toon_canvas(i, 128))
    assert canvas.shape == (256, 256, 3)   # drawn at 2x, then LANCZOS-downsampled
    # cel look: a few flat colours cover most of the drawing
    assert _top_colour_coverage(canvas) > 0.75, i
    # ink outlines: a visible share of the frame is the near-black ink colour
    ink = (np.abs(canvas.astype(int) - builtin.INK).max(-1) < 4).mean()
    assert 0.01 < ink < 0.3, (i, ink)
    out = builtin.render("toon", i, 128)
    assert (out.max(-1) < 80).mean() > 0.01, i
  photos = [builtin.render("photo", i, 256, s) for i in range(6) for s in ("train", "test")]
  assert max(_top_colour_coverage(p) for p in photos) < 0.6


def test_unknown_domain_or_split_raises():
  with pytest.raises(ValueError, match="cartoon"):
    builtin.render("cartoon", 0, 32)
  with pytest.raises(ValueError, match="valid"):
    builtin.render("toon", 0, 32, "valid")
  with pytest.raises(ValueError, match="anime"):
    builtin.num_available("anime", "train")
  with pytest.raises(ValueError, match="val"):
    builtin.num_available("photo", "val")


def test_does_not_import_jax():
  code = ("import sys; import colorjax.data.builtin as b; b.render('toon', 0, 16); "
          "b.render('photo', 0, 16); assert 'jax' not in sys.modules, 'jax imported'")
  subprocess.run([sys.executable, "-c", code], check=True)
