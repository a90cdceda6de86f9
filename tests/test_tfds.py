"""TFDS datasets as a domain (`tfds:NAME[/CONFIG][:SPLIT]`), read through tfds.data_source.

The test prepares its own tiny array_record dataset (no TensorFlow, no download) in a
temporary TFDS_DATA_DIR. Skips when the optional extra (tensorflow-datasets) is absent.
"""
import json
import os

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")
pytest.importorskip("array_record")

from colorjax import train  # noqa: E402
from colorjax.data import decode, sources, tfds_source  # noqa: E402

NAME = "colorjax_tiny_images"
N_TRAIN, N_TEST = 24, 6


def make_image(seed: int, grey: bool) -> np.ndarray:
  """A colourful (or grey) 40×48 image with smooth structure and some noise."""
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[0:40, 0:48] / 48.0
  base = np.stack([np.sin(6 * x + seed), np.cos(5 * y - seed), np.sin(4 * (x + y))], -1)
  img = (127.5 + 100 * base + rng.normal(0, 10, base.shape)).clip(0, 255).astype(np.uint8)
  return img[..., :1] if grey else img


class ColorjaxTinyImages(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Two configs: "rgb" (default) and "grey"; a "train" and a "test" split; PNG-encoded."""
  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = [tfds.core.BuilderConfig(name="rgb"), tfds.core.BuilderConfig(name="grey")]

  def _info(self):
    channels = 1 if self.builder_config.name == "grey" else 3
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        "label": tfds.features.ClassLabel(num_classes=3),
        "photo": tfds.features.Image(shape=(None, None, channels))}))

  def _split_generators(self, dl_manager):
    return {"train": self._generate_examples(0, N_TRAIN),
            "test": self._generate_examples(1000, N_TEST)}

  def _generate_examples(self, start, n):
    import PIL.Image
    grey = self.builder_config.name == "grey"
    for i in range(start, start + n):
      # PIL images are PNG-encoded by PIL itself: preparing needs no TensorFlow.
      img = make_image(i, grey)
      yield i, {"photo": PIL.Image.fromarray(img[..., 0] if grey else img), "label": i % 3}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("tfds"))
  for config in ("rgb", "grey"):
    ColorjaxTinyImages(config=config, data_dir=path,
                       file_format="array_record").download_and_prepare()
  return path


@pytest.fixture
def tfds_env(data_dir, monkeypatch):
  monkeypatch.setenv("TFDS_DATA_DIR", data_dir)
  return data_dir


def test_records_and_images_round_trip(tfds_env):
  recs = tfds_source.records(f"tfds:{NAME}")
  assert len(recs) == N_TRAIN and recs[0] == ("tfds", f"tfds:{NAME}", 0)
  seen = {tfds_source.load(r).tobytes() for r in recs}
  want = {make_image(i, False).tobytes() for i in range(N_TRAIN)}
  assert seen == want                 # PNG is lossless: every image comes back exactly
  img = tfds_source.load(recs[5])
  assert img.dtype == np.uint8 and img.shape == (40, 48, 3)
  # Through the pipeline's decoder: a square crop, not grey.
  rgb = decode.load_rgb(recs[5], 32)
  assert rgb.shape == (32, 32, 3) and not decode.is_grey(rgb)


def test_config_split_and_slice(tfds_env):
  grey = tfds_source.records(f"tfds:{NAME}/grey:test")
  assert len(grey) == N_TEST
  img = tfds_source.load(grey[0])
  assert img.shape == (40, 48) and img.dtype == np.uint8
  assert len(tfds_source.records(f"tfds:{NAME}/rgb:train[:50%]")) == N_TRAIN // 2


def test_domain_splits_reads_tfds(tfds_env, tiny_config):
  tiny_config.data.train_size, tiny_config.data.val_size, tiny_config.data.test_size = 0, 4, 4
  splits = sources.domain_splits(tiny_config.data, f"tfds:{NAME}", seed=0)
  assert (len(splits.train), len(splits.val), len(splits.test)) == (16, 4, 4)
  all_idx = [r[2] for s in splits for r in s]
  assert sorted(all_idx) == list(range(N_TRAIN))


def test_errors_say_what_to_do(tfds_env, tmp_path, monkeypatch):
  with pytest.raises(sources.DataError, match=r"unknown split 'validation'.*test, train"):
    tfds_source.records(f"tfds:{NAME}:validation")
  with pytest.raises(sources.DataError, match=r"no TFDS dataset named 'no_such_dataset_xyz'"):
    tfds_source.records("tfds:no_such_dataset_xyz")
  with pytest.raises(sources.DataError, match="is not tfds:NAME"):
    tfds_source.records("tfds:")
  # A registered dataset that was never prepared: no download, a message saying how.
  empty = str(tmp_path / "empty")
  monkeypatch.setenv("TFDS_DATA_DIR", empty)
  with pytest.raises(sources.DataError) as e:
    tfds_source.records("tfds:mnist")
  msg = str(e.value)
  assert "not prepared in " + empty in msg
  assert "tfds build mnist --file_format=array_record" in msg and "download_and_prepare" in msg
  assert not os.path.exists(os.path.join(empty, "downloads"))


def test_one_epoch_trains_on_tfds(tfds_env, tiny_config, tmp_path):
  c = tiny_config
  c.data.domains = (f"tfds:{NAME}", "toon")   # a TFDS domain next to a built-in one
  c.data.train_size, c.data.val_size, c.data.test_size = 8, 4, 4
  summary = train.train_and_evaluate(c, str(tmp_path / "run"))
  assert summary["type"] == "epoch" and summary["epoch"] == 1
  assert np.isfinite(summary["train_l1"]) and np.isfinite(summary["val_loss"])
  lines = [json.loads(x) for x in open(tmp_path / "run" / "metrics.jsonl")]
  data = next(x for x in lines if x.get("type") == "data")
  # Mixed model: half of each domain's 8 training images; 4 validation images each.
  assert data["train_images"] == 8 and data["val_images"] == 8 and data["bad_images"] == 0
