"""Where images come from: folders, the built-in generated domains, TFDS; and the split.

A *record* names one image without loading it: `("file", path)`, `("builtin", domain, index,
split)` or `("tfds", name, index)`. Records are plain tuples so that grain can ship them to
worker processes and checkpoint iterators over them. Nothing here touches JAX.
"""
from __future__ import annotations

import math
import os
from typing import NamedTuple, Sequence

import numpy as np

from colorjax.data import tfds_source
from colorjax.data.errors import DataError  # noqa: F401  (re-exported: sources.DataError)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
BUILTIN_DOMAINS = ("toon", "photo")
FOLDER_DOMAINS = {"cartoon": "cartoon_dir", "movie": "movie_dir"}


class Splits(NamedTuple):
  """The records of one domain, split three ways; `test` is never used for training or selection."""
  train: list
  val: list
  test: list


def list_images(folder: str) -> list[str]:
  """All image files below `folder` (recursive, sorted, by extension), symlinks included."""
  if not folder:
    raise DataError("no folder given: set config.data.cartoon_dir / movie_dir")
  if not os.path.isdir(folder):
    raise DataError(f"{folder}: " + ("not a directory" if os.path.exists(folder)
                                     else "no such directory"))
  paths, seen = [], set()
  for root, dirs, files in os.walk(folder, followlinks=True):
    # Following links, a link to an ancestor would loop forever: visit each real dir once.
    real = os.path.realpath(root)
    if real in seen:
      dirs[:] = []
      continue
    seen.add(real)
    dirs.sort()
    paths.extend(os.path.join(root, f) for f in sorted(files)
                 if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith("."))
  return paths


def _count(size: float | int, total: int, what: str) -> int:
  """A split size given as a count (>= 1) or a fraction (< 1) of `total`."""
  if size < 0:
    raise DataError(f"config.data.{what}={size}: must be >= 0 (a count, or a fraction < 1)")
  return int(math.floor(size * total)) if 0 < size < 1 else int(size)


def _as_size(value):
  """A split size as the config holds it (a float, so that fractions can be given on the
  command line) -> an int count when whole, else the fraction."""
  return int(value) if value >= 1 and float(value).is_integer() else value


def split_records(records: Sequence, train_size, test_size, val_size, seed: int,
                  name: str = "") -> Splits:
  """A deterministic, seeded train/val/test split of `records`.

  The test split is taken first, so it does not depend on `train_size` or `val_size`;
  validation is carved out of what remains, then `train_size` of the rest (a count or a
  fraction of the remaining pool; 0 = all).
  """
  n = len(records)
  n_test = _count(test_size, n, "test_size")
  if n_test >= n:
    raise DataError(f"{name}: config.data.test_size={test_size} leaves no training images "
                    f"(only {n} usable images)")
  order = np.random.default_rng(seed).permutation(n)
  test, rest = order[:n_test], order[n_test:]
  n_val = _count(val_size, len(rest), "val_size")
  if n_val >= len(rest):
    raise DataError(f"{name}: config.data.val_size={val_size} leaves no training images")
  val, rest = rest[:n_val], rest[n_val:]
  n_train = _count(train_size, len(rest), "train_size") or len(rest)
  if n_train > len(rest):
    raise DataError(f"{name}: config.data.train_size={train_size} but only {len(rest)} images "
                    f"remain after test ({n_test}) and validation ({n_val})")
  pick = lambda idx: [records[i] for i in sorted(idx)]
  return Splits(pick(rest[:n_train]), pick(val), pick(test))


def builtin_splits(domain: str, train_size, test_size, val_size) -> Splits:
  """Built-in generated domain: disjoint index ranges; test images come from the test stream."""
  def n(size, default):
    return int(size) if size >= 1 else default
  n_train, n_val, n_test = n(train_size, 512), n(val_size, 64), n(test_size, 64)
  return Splits([("builtin", domain, i, "train") for i in range(n_train)],
                [("builtin", domain, n_train + i, "train") for i in range(n_val)],
                [("builtin", domain, i, "test") for i in range(n_test)])


def _check_apart(data_config, key: str) -> None:
  """The domains' folders must not hold one another: a nested folder's images would be in both
  domains, so one domain's test images would train the other's models."""
  def real(k):
    folder = data_config.get(k, "")
    return os.path.join(os.path.realpath(folder), "") if folder else None
  mine = real(key)
  for other in FOLDER_DOMAINS.values():
    theirs = real(other)
    if other != key and theirs and (theirs.startswith(mine) or mine.startswith(theirs)):
      raise DataError(f"config.data.{key}={data_config[key]} and config.data.{other}="
                      f"{data_config[other]}: one folder holds the other; give each domain a "
                      "folder of its own")


def absolute_folders(data_config) -> None:
  """Make the domains' folders absolute in place, so a run's config.json still finds them
  from another directory (eval, study, notebooks)."""
  for key in FOLDER_DOMAINS.values():
    if data_config.get(key, ""):
      data_config[key] = os.path.abspath(data_config[key])


def domain_splits(data_config, domain: str, seed: int) -> Splits:
  """Records of one domain of the config: "cartoon"/"movie" folders, "toon"/"photo", "tfds:…"."""
  size = tuple(_as_size(data_config[k]) for k in ("train_size", "test_size", "val_size"))
  if domain in BUILTIN_DOMAINS:
    return builtin_splits(domain, *size)
  if domain.startswith("tfds:"):
    records = tfds_source.records(domain)
  elif domain in FOLDER_DOMAINS:
    key = FOLDER_DOMAINS[domain]
    folder = data_config.get(key, "")
    if not folder:
      raise DataError(f"domain {domain!r} needs config.data.{key} (a folder of images)")
    _check_apart(data_config, key)
    try:
      records = [("file", p) for p in list_images(folder)]
    except DataError as e:
      raise DataError(f"config.data.{key}={e}") from None
    if not records:
      raise DataError(f"config.data.{key}={folder}: no image files found "
                      f"(looked for {', '.join(IMAGE_EXTENSIONS)})")
  else:
    raise DataError(f"config.data.domains: unknown domain {domain!r}; expected cartoon, movie, "
                    f"{', '.join(BUILTIN_DOMAINS)} or tfds:NAME[/CONFIG][:SPLIT]")
  return split_records(records, *size, seed=seed, name=domain)


def folder_test_records(folder: str) -> list:
  """Every image of a folder, for evaluating on data the run has never seen (`--eval_dirs`)."""
  records = [("file", p) for p in list_images(folder)]
  if not records:
    raise DataError(f"{folder}: no image files found")
  return records
