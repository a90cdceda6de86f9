"""`--mode=eval` on folders: each folder its own label, greyscale images skipped and counted.

Real image folders (PIL, tmp_path) scored by a saved random tiny run (conftest.run_dir).
"""
import csv
import json
import os
import types

import numpy as np
import pytest
from PIL import Image

from colorjax import cli, evaluate
from colorjax.data import sources
from conftest import save_random_run


def colour(path, seed=0, size=40):
  Image.fromarray(np.random.default_rng(seed).integers(0, 255, (size, size, 3), np.uint8)).save(path)


def grey(path, seed=0, size=40, mode="L"):
  """A greyscale file: one channel ("L"), or RGB with equal channels ("RGB")."""
  g = np.random.default_rng(seed).integers(0, 255, (size, size), np.uint8)
  Image.fromarray(g if mode == "L" else np.repeat(g[..., None], 3, -1)).save(path)


def folder(root, name, n_colour=0, n_grey=0):
  d = root / name
  d.mkdir(parents=True)
  for i in range(n_colour):
    colour(d / f"c{i}.png", seed=i)
  for i in range(n_grey):         # both kinds of grey: a mode-L JPEG and an equal-channel PNG
    grey(d / (f"g{i}.jpg" if i % 2 else f"g{i}.png"), seed=i, mode="L" if i % 2 else "RGB")
  return str(d)


def read_outputs(run_dir):
  with open(os.path.join(run_dir, "eval.json")) as f:
    report = json.load(f)
  with open(os.path.join(run_dir, "eval_per_image.csv")) as f:
    rows = list(csv.DictReader(f))
  return report, rows


def test_labels_are_the_shortest_unique_path_suffixes(tmp_path):
  a, b, c = tmp_path / "a/x/test", tmp_path / "b/x/test", tmp_path / "c/other"
  assert list(evaluate.folder_labels([str(a), str(b), str(c)])) == ["a/x/test", "b/x/test",
                                                                    "other"]
  # Unique base names stay as they were; a trailing slash changes nothing.
  assert evaluate.folder_labels([f"{a}/", str(c)]) == {"test": f"{a}/", "other": str(c)}
  # A folder whose whole path ends another's keeps its absolute path.
  top, deep = tmp_path / "test", tmp_path / "x" / tmp_path.relative_to("/") / "test"
  assert evaluate.folder_labels([str(top), str(deep)]) == {str(top): str(top),
                                                          "x/" + str(top)[1:]: str(deep)}


def test_a_folder_given_twice_is_evaluated_once(tmp_path):
  d = folder(tmp_path, "data/test", n_colour=1)
  os.symlink(d, tmp_path / "alias")
  assert evaluate.folder_labels([d, f"{d}/", str(tmp_path / "alias")]) == {"test": d}


def test_same_named_folders_each_get_their_own_label_and_rows(run_dir, tmp_path, capsys):
  x = folder(tmp_path, "x/test", n_colour=2)
  y = folder(tmp_path, "y/test", n_colour=3)
  other = folder(tmp_path, "other", n_colour=1)
  report = evaluate.evaluate_run(run_dir, eval_dirs=[x, y, other, x], print_summary=True)
  n = {"x/test": 2, "y/test": 3, "other": 1}
  assert {k: v["n"] for k, v in report["domains"].items()} == n
  assert all(v["grey_skipped"] == 0 and np.isfinite(v["delta_e"])
             for v in report["domains"].values())
  saved, rows = read_outputs(run_dir)
  assert saved["domains"] == report["domains"]
  assert sorted(r["domain"] for r in rows) == sorted(k for k, c in n.items() for _ in range(c))
  for r in rows:
    assert os.path.dirname(r["image"]) == {"x/test": x, "y/test": y, "other": other}[r["domain"]]
  out = capsys.readouterr().out
  assert "x/test:" in out and "y/test:" in out and "skipped" not in out


def test_grey_images_are_skipped_and_counted(run_dir, tmp_path, capsys):
  photos = folder(tmp_path, "photos", n_colour=2, n_grey=3)
  plain = folder(tmp_path, "plain", n_colour=2)
  report = evaluate.evaluate_run(run_dir, eval_dirs=[photos, plain], print_summary=True)
  assert report["domains"]["photos"]["n"] == 2 and report["domains"]["photos"]["grey_skipped"] == 3
  assert report["domains"]["plain"]["n"] == 2 and report["domains"]["plain"]["grey_skipped"] == 0
  saved, rows = read_outputs(run_dir)
  assert saved["domains"]["photos"]["grey_skipped"] == 3
  scored = sorted(os.path.basename(r["image"]) for r in rows if r["domain"] == "photos")
  assert scored == ["c0.png", "c1.png"]
  lines = capsys.readouterr().out.splitlines()
  assert [l.strip() for l in lines if "skipped" in l] == [
      "photos: skipped 3 grey images (no colour to score)"]


def test_a_folder_of_only_grey_images_is_a_one_line_error(run_dir, tmp_path, capsys):
  ok = folder(tmp_path, "ok", n_colour=1)
  bw = folder(tmp_path, "bw", n_grey=2)
  with pytest.raises(sources.DataError, match=r"bw: all 2 images are greyscale") as e:
    evaluate.evaluate_run(run_dir, eval_dirs=[ok, bw])
  assert bw in str(e.value) and "\n" not in str(e.value)
  # Through the command: one error line and exit code 2, like an empty folder.
  flags = types.SimpleNamespace(workdir=run_dir, eval_dirs=[ok, bw], step=None, hints="")
  assert cli.run("eval", None, flags) == 2
  err = capsys.readouterr().err.strip()
  assert err == f"error: {bw}: all 2 images are greyscale (no colour to score)"


def test_a_training_domains_test_split_skips_its_grey_files(tmp_path):
  data = tmp_path / "cartoon"
  data.mkdir()
  for i in range(6):
    colour(data / f"c{i}.png", seed=i)
    grey(data / f"g{i}.png", seed=i, mode="RGB")
  run = save_random_run(str(tmp_path / "run"), **{"data.domains": ("cartoon",),
                                                   "data.cartoon_dir": str(data),
                                                   "data.test_size": 6, "data.train_size": 0})
  from colorjax import checkpoints
  config = checkpoints.restore_generator(run)[0]
  test = sources.domain_splits(config.data, "cartoon", config.seed).test
  n_grey = sum(os.path.basename(r[1]).startswith("g") for r in test)
  assert 0 < n_grey < 6               # the seeded split holds both kinds
  report = evaluate.evaluate_run(run)
  assert report["domains"]["cartoon"]["grey_skipped"] == n_grey
  assert report["domains"]["cartoon"]["n"] == 6 - n_grey
