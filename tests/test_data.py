"""Input pipeline: splits, folder listing, determinism, shapes and ranges, the mixed draw."""

import numpy as np
import pytest
from PIL import Image

from colorjax import train
from colorjax.data import decode, pipeline, sources
from conftest import make_tiny_config


def write_images(folder, n, size=(48, 40)):
  rng = np.random.default_rng(0)
  paths = []
  for i in range(n):
    sub = folder / ("a" if i % 2 else "b")
    sub.mkdir(parents=True, exist_ok=True)
    ext = ".png" if i % 3 else ".jpg"
    path = sub / f"img{i:03d}{ext}"
    Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).save(path)
    paths.append(str(path))
  (folder / "notes.txt").write_text("not an image")
  return sorted(paths)


def test_folder_listing_is_recursive_and_filters_extensions(tmp_path):
  paths = write_images(tmp_path, 7)
  assert sources.list_images(str(tmp_path)) == paths
  with pytest.raises(sources.DataError, match="no such directory"):
    sources.list_images(str(tmp_path / "missing"))
  with pytest.raises(sources.DataError, match=r"\.(png|jpg): not a directory"):
    sources.list_images(paths[0])


def test_split_is_seeded_disjoint_and_sized():
  records = [("file", f"/x/{i}.png") for i in range(100)]
  s1 = sources.split_records(records, train_size=0, test_size=20, val_size=0.1, seed=3)
  s2 = sources.split_records(records, train_size=0, test_size=20, val_size=0.1, seed=3)
  assert s1 == s2
  assert (len(s1.train), len(s1.val), len(s1.test)) == (72, 8, 20)
  assert not set(s1.train) & set(s1.test) and not set(s1.val) & set(s1.test)
  assert len(set(s1.train) | set(s1.val) | set(s1.test)) == 100
  # The test split does not depend on how much training data is used.
  s3 = sources.split_records(records, train_size=10, test_size=20, val_size=5, seed=3)
  assert s3.test == s1.test and len(s3.train) == 10
  assert sources.split_records(records, 0, 20, 0, seed=4).test != s1.test
  with pytest.raises(sources.DataError, match="test_size"):
    sources.split_records(records, 0, 100, 0, seed=0, name="cartoon")


def test_train_pipeline_is_deterministic_with_documented_shapes(tmp_path):
  write_images(tmp_path, 12)
  config = make_tiny_config()
  config.data.domains = ("cartoon",)
  config.data.cartoon_dir = str(tmp_path)
  config.data.test_size, config.data.val_size, config.data.train_size = 2, 2, 0
  splits = train.domain_records(config)["cartoon"]
  assert len(splits.train) == 8

  def first_batches(seed, n=3):
    it = iter(pipeline.train_dataset([splits.train], 32, 4, seed=seed))
    return [next(it) for _ in range(n)]

  a, b, c = first_batches(0), first_batches(0), first_batches(1)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x["L"], y["L"])
    np.testing.assert_array_equal(x["ab"], y["ab"])
  assert not np.array_equal(a[0]["L"], c[0]["L"])
  batch = a[0]
  assert batch["L"].shape == (4, 32, 32, 1) and batch["ab"].shape == (4, 32, 32, 2)
  assert batch["L"].dtype == np.float32 and batch["ab"].dtype == np.float32
  assert -1 <= batch["L"].min() and batch["L"].max() <= 1
  assert -1 <= batch["ab"].min() and batch["ab"].max() <= 1
  assert batch["ab"].std() > 0.05                    # random colour images carry colour


def test_random_zoom_crops_cover_the_documented_share_of_the_short_side():
  """config.data.crop_scale: a training crop spans s × the short side, s in [crop_scale, 1];
  at 1 (the recipe) and for evaluation (no rng) it spans the whole short side."""
  w, h = 400, 200          # R encodes x, G encodes y: a crop's extent is readable from its pixels
  x, y = np.meshgrid(np.linspace(0, 255, w), np.linspace(0, 255, h))
  im = Image.fromarray(np.stack([x, y, np.zeros_like(x)], -1).round().astype(np.uint8))

  def spans(crop_scale, rng):
    rgb = decode.resize_crop(im, 32, rng, crop_scale).astype(float)
    return (np.ptp(rgb[..., 0]) / 255 * (w - 1), np.ptp(rgb[..., 1]) / 255 * (h - 1))

  rng = np.random.default_rng(0)
  zoomed = np.array([spans(0.5, rng) for _ in range(40)])
  assert np.all(zoomed > 0.5 * h * 0.9) and np.all(zoomed < h * 1.02)
  np.testing.assert_allclose(zoomed[:, 0], zoomed[:, 1], atol=8)    # square crops
  assert zoomed[:, 1].min() < 0.65 * h and zoomed[:, 1].max() > 0.9 * h   # s varies
  full = np.array([spans(1.0, rng) for _ in range(5)])
  assert np.all(full[:, 1] > 0.95 * h)
  np.testing.assert_array_equal(decode.resize_crop(im, 32, None, 0.5),
                                decode.resize_crop(im, 32, None))


def test_mixed_model_draws_evenly_with_the_same_image_count():
  config = make_tiny_config()
  config.data.domains = ("toon", "photo")
  config.data.train_size = 16
  splits = train.domain_records(config)
  assert [len(s.train) for s in splits.values()] == [8, 8]     # same total as one domain
  single = train.domain_records(make_tiny_config())
  assert len(single["toon"].train) == 16
  # grain's mix alternates the domains, so every batch is half toon, half photo.
  ds = pipeline.train_dataset([s.train for s in splits.values()], 32, 4, seed=0)
  import grain
  mixed = grain.MapDataset.mix([grain.MapDataset.source(s.train).seed(i).shuffle().repeat()
                                for i, s in enumerate(splits.values())])
  first = [mixed[i] for i in range(16)]
  assert sum(r[1] == "toon" for r in first) == 8
  assert next(iter(ds))["L"].shape == (4, 32, 32, 1)


def test_eval_batches_pad_and_mask():
  records = [("builtin", "toon", i, "test") for i in range(5)]
  batches = list(pipeline.eval_batches(records, 32, 4))
  assert len(batches) == 2
  assert batches[1]["mask"].tolist() == [1, 0, 0, 0]
  assert batches[1]["index"].tolist() == [4, -1, -1, -1]
  # Centre crops, no augmentation: the same record gives the same example every time.
  again = list(pipeline.eval_batches(records, 32, 4))
  np.testing.assert_array_equal(batches[0]["ab"], again[0]["ab"])


def test_decode_handles_modes_and_orientation(tmp_path):
  rgb = np.zeros((20, 40, 3), np.uint8)
  rgb[:, :20] = (255, 0, 0)
  im = Image.fromarray(rgb)
  exif = im.getexif()
  exif[0x0112] = 6                                   # rotate 90° clockwise when displayed
  im.save(tmp_path / "rot.jpg", exif=exif)
  assert decode.open_rgb(str(tmp_path / "rot.jpg")).size == (20, 40)
  Image.fromarray(rgb).convert("P").save(tmp_path / "pal.png")
  assert decode.open_rgb(str(tmp_path / "pal.png")).mode == "RGB"
  Image.fromarray((np.arange(400).reshape(20, 20) * 150).astype(np.uint16)).save(tmp_path / "g16.png")
  grey = np.asarray(decode.open_rgb(str(tmp_path / "g16.png")))
  assert grey.dtype == np.uint8 and decode.is_grey(grey)
  (tmp_path / "bad.jpg").write_text("hello")
  with pytest.raises(decode.BadImage, match="bad.jpg"):
    decode.open_rgb(str(tmp_path / "bad.jpg"))


def test_data_folders_are_stored_absolute_and_must_not_hold_one_another(tmp_path, monkeypatch):
  from colorjax import config_lib
  from conftest import make_tiny_config
  write_images(tmp_path / "d", 6)
  monkeypatch.chdir(tmp_path)
  config = make_tiny_config()
  config.data.cartoon_dir, config.data.movie_dir = "d", "d/a"
  final = config_lib.finalize(config)      # what config.json holds: found from anywhere
  assert final.data.cartoon_dir == str(tmp_path / "d")
  assert final.data.movie_dir == str(tmp_path / "d" / "a")
  with pytest.raises(sources.DataError, match=r"config\.data\.cartoon_dir=.*d and "
                     r"config\.data\.movie_dir=.*a: one folder holds the other"):
    sources.domain_splits(final.data, "cartoon", 0)
