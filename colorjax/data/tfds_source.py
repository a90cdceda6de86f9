"""TFDS datasets as a colorjax domain: `tfds:NAME[/CONFIG][:SPLIT]` (default split "train").

Reads a dataset already prepared in the array_record format through `tfds.data_source`
(random access; TensorFlow is not needed to read, only `tensorflow-datasets` and
`array-record`, an optional extra). Nothing is ever downloaded at run time: a dataset that
is not prepared gives a DataError saying how to prepare it. The data directory is TFDS's
own: `$TFDS_DATA_DIR`, else `~/tensorflow_datasets`.

SPLIT takes TFDS's slicing syntax, e.g. `tfds:imagenette/320px-v2:train[:50%]`. A record is
`("tfds", spec, index)`; `index` counts examples of that (sliced) split. The image is the
dataset's feature named "image" if it is an image, else its first `tfds.features.Image`.
"""
from __future__ import annotations

import functools
import os
from typing import Any, NamedTuple

import numpy as np

from colorjax.data.errors import BadImage, DataError

PREFIX = "tfds:"


class Source(NamedTuple):
  """An open TFDS split: the random-access data source and the image feature's key path."""
  data: Any
  image_key: tuple[str, ...]


def parse_spec(spec: str) -> tuple[str, str]:
  """`tfds:NAME[/CONFIG][:SPLIT]` → (NAME[/CONFIG], SPLIT); SPLIT defaults to "train"."""
  body = spec[len(PREFIX):] if spec.startswith(PREFIX) else spec
  name, _, split = body.partition(":")   # names and configs never hold ':'; slices may
  if not name or name.startswith("/") or name.endswith("/"):
    raise DataError(f"config.data.domains: {spec!r} is not tfds:NAME[/CONFIG][:SPLIT]")
  return name, split or "train"


def data_dir() -> str | None:
  """The TFDS data directory in use: $TFDS_DATA_DIR, or None for TFDS's default."""
  return os.environ.get("TFDS_DATA_DIR") or None


def _where(directory: str | None) -> str:
  return directory or "~/tensorflow_datasets (TFDS's default; set TFDS_DATA_DIR to change it)"


def _prepare_hint(name: str, directory: str | None) -> str:
  dir_flag = f" --data_dir={directory}" if directory else ""
  dir_arg = f", data_dir={directory!r}" if directory else ""
  return (f"prepare it once (most datasets need tensorflow to prepare, not to read): "
          f"`tfds build {name} --file_format=array_record{dir_flag}` or `python -c \"import "
          f"tensorflow_datasets as tfds; tfds.builder('{name}', file_format='array_record'"
          f"{dir_arg}).download_and_prepare()\"`")


def _first_line(e: BaseException) -> str:
  lines = str(e).strip().splitlines()
  return lines[0] if lines else type(e).__name__


def _find_image(features, path: tuple[str, ...] = ()) -> tuple[str, ...] | None:
  """Key path of the image feature ("image" preferred, else the first Image found)."""
  import tensorflow_datasets as tfds
  items = list(features.items())
  for key, feature in sorted(items, key=lambda kv: kv[0] != "image"):
    if isinstance(feature, tfds.features.Image):
      return (*path, key)
  for key, feature in items:
    if isinstance(feature, tfds.features.FeaturesDict):
      found = _find_image(feature, (*path, key))
      if found:
        return found
  return None


@functools.lru_cache(maxsize=None)
def open_source(spec: str, directory: str | None = None) -> Source:
  """The data source of `spec`, opened once per process (grain workers each open their own)."""
  name, split = parse_spec(spec)
  try:
    import tensorflow_datasets as tfds
  except ImportError:
    raise DataError(f"{spec}: reading TFDS datasets needs the optional extra: "
                    "pip install tensorflow-datasets array-record") from None
  try:
    builder = tfds.builder(name, data_dir=directory)
  except tfds.core.registered.DatasetNotFoundError:
    raise DataError(f"{spec}: no TFDS dataset named {name.split('/')[0]!r} is registered or "
                    f"prepared in {_where(directory)}") from None
  except Exception as e:  # a bad config name, a broken dataset_info.json, ...
    raise DataError(f"{spec}: {_first_line(e)}") from None
  if not builder.is_prepared():
    raise DataError(f"{spec}: TFDS dataset {name!r} is not prepared in {_where(directory)}; "
                    + _prepare_hint(name, directory))
  if split.split("[")[0] not in builder.info.splits:
    raise DataError(f"{spec}: unknown split {split!r}; {name} has "
                    f"{', '.join(sorted(builder.info.splits))}")
  try:
    data = builder.as_data_source(split=split)
  except NotImplementedError:   # prepared as tfrecord: no random access
    raise DataError(f"{spec}: {name} is prepared as {builder.info.file_format.value}, which has "
                    f"no random access; re-prepare it as array_record: "
                    + _prepare_hint(name, directory)) from None
  except Exception as e:  # a bad slice, missing shard files, ...
    raise DataError(f"{spec}: cannot open split {split!r} ({_first_line(e)})") from None
  image_key = _find_image(builder.info.features)
  if image_key is None:
    raise DataError(f"{spec}: {name} has no image feature (features: "
                    f"{', '.join(builder.info.features.keys())})")
  return Source(data, image_key)


def records(spec: str) -> list[tuple]:
  """Records `("tfds", spec, index)` for every example of the split named by `spec`."""
  source = open_source(spec, data_dir())
  n = len(source.data)
  if n == 0:
    raise DataError(f"{spec}: the split has no examples")
  return [("tfds", spec, i) for i in range(n)]


def load(record) -> np.ndarray:
  """The image of a record: uint8 [H, W, 3] (colour) or [H, W] (grey).

  Raises decode.BadImage (skipped by the pipeline) for an example that cannot be decoded.
  """
  _, spec, index = record
  source = open_source(spec, data_dir())
  where = f"{spec}[{index}]"
  try:
    example = source.data[int(index)]
    for key in source.image_key:
      example = example[key]
  except Exception as e:  # a corrupt record or an undecodable image
    raise BadImage(f"{where}: cannot decode ({type(e).__name__}: {_first_line(e)})") from None
  image = np.asarray(example)
  if image.ndim == 3 and image.shape[-1] in (1, 2):   # grey (+ alpha)
    image = image[..., 0]
  elif image.ndim == 3 and image.shape[-1] >= 3:      # RGB (+ alpha)
    image = image[..., :3]
  elif image.ndim != 2:
    raise BadImage(f"{where}: image has shape {image.shape}, expected [H, W, C]")
  if image.dtype == np.uint16:
    image = (image.astype(np.float32) / 257.0).round().astype(np.uint8)
  elif image.dtype != np.uint8:
    raise BadImage(f"{where}: image dtype {image.dtype}, expected uint8")
  return np.ascontiguousarray(image)
