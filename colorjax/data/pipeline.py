"""grain input pipelines: records → shuffled, augmented, batched examples.

Training: one infinite iterator over the train records (shuffled afresh each epoch from the
seed, per-example random crop/flip seeded by position), so its state — a position — goes into
every checkpoint and a resumed run sees exactly the batches it would have seen. The mixed
model interleaves its domains evenly (grain `mix`). Evaluation: the records in order, centre
crops, the last batch padded and masked.
"""
from __future__ import annotations

import functools
import logging
import signal
from typing import Iterator, Sequence

import grain
import numpy as np

from colorjax import hints as hints_lib
from colorjax.data import decode


def _train_map(record, rng: np.random.Generator, size: int, hints: bool = False,
               crop_scale: float = 1.0):
  example = decode.load_example(record, size, rng, skip_grey=True, crop_scale=crop_scale)
  if hints and "bad" not in example:
    # Drawn from the example's own rng after its crop and flip: fixed by seed and position.
    example["hints"] = hints_lib.simulate_hints(example["ab"], rng)
  return example


def _is_good(example) -> bool:
  if "bad" in example:
    logging.warning("skipping %s", example["bad"])
    return False
  return True


def _strict(example):
  if "bad" in example:
    raise decode.BadImage(example["bad"] + " (config.data.on_bad_image='error')")
  return example


def train_dataset(domains: Sequence[Sequence], image_size: int, batch_size: int, seed: int,
                  workers: int = 0, on_bad_image: str = "skip", shard_index: int = 0,
                  shard_count: int = 1, hints: bool = False,
                  crop_scale: float = 1.0) -> grain.IterDataset:
  """Infinite dataset of batches {"L": [B,S,S,1], "ab": [B,S,S,2]} float32 in [-1, 1].

  With `hints` (a hint model) batches also hold "hints" [B,S,S,3]: simulated user hints
  (`colorjax.hints.simulate_hints`: sparse patches of the true colour, a/110, b/110, mask).
  `crop_scale` < 1: random zoomed-in crops (`decode.resize_crop`).

  `domains` holds one record list per domain; with several they are drawn evenly.
  `batch_size` is the per-process batch. Multi-host: process `shard_index` of `shard_count`
  reads every `shard_count`-th example of the one shuffled stream, so the processes' batches
  together are exactly the examples a single process would have put in its global batch.
  """
  per_domain = [grain.MapDataset.source(list(r)).seed(seed + i).shuffle().repeat()
                for i, r in enumerate(domains)]
  ds = per_domain[0] if len(per_domain) == 1 else grain.MapDataset.mix(per_domain)
  ds = ds.random_map(functools.partial(_train_map, size=image_size, hints=hints,
                                    crop_scale=crop_scale), seed=seed)
  if shard_count > 1:   # after random_map: an example's augmentation is its global position's
    ds = ds[shard_index::shard_count]
  # Without worker processes, read with 2 threads so decoding overlaps the train step.
  read = grain.ReadOptions(num_threads=0 if workers else 2, prefetch_buffer_size=0 if workers else 8)
  it = ds.to_iter_dataset(read)
  it = it.map(_strict) if on_bad_image == "error" else it.filter(_is_good)
  if workers > 0:
    # Workers decode examples and the batch is formed here, so the batches do not depend on
    # the worker count (batched inside the workers, each batch would hold one worker's share).
    _ensure_flags_parsed()
    it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers,
                                                     per_worker_buffer_size=2 * batch_size),
                        worker_init_fn=_worker_init)
  return it.batch(batch_size, drop_remainder=True)


def _ensure_flags_parsed() -> None:
  """grain's workers read absl flags; used as a library (not via launch.py) none are parsed."""
  from absl import flags
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


def _worker_init(worker_index: int, worker_count: int) -> None:
  """Data workers ignore SIGINT/SIGTERM: Ctrl-C reaches the whole process group, and the main
  process must finish its step and checkpoint (reading batches) before it shuts them down."""
  del worker_index, worker_count
  signal.signal(signal.SIGINT, signal.SIG_IGN)
  signal.signal(signal.SIGTERM, signal.SIG_IGN)


VAL_HINT_SEED = 17          # validation hints: fixed per example, the same at every score


def _eval_map(record, size: int, hints: bool = False, index: int = 0):
  example = decode.load_example(record, size, None)
  if "bad" in example:
    logging.warning("skipping %s", example["bad"])
    return _blank(size, hints)
  if hints:
    rng = np.random.default_rng((VAL_HINT_SEED, index))
    example["hints"] = hints_lib.simulate_hints(example["ab"], rng)
  return {**example, "mask": np.float32(1)}


def _blank(size: int, hints: bool) -> dict:
  """A masked-out example (an unusable image, or padding of the last batch)."""
  blank = {"L": np.zeros((size, size, 1), np.float32), "ab": np.zeros((size, size, 2), np.float32),
           "mask": np.float32(0)}
  if hints:
    blank["hints"] = np.zeros((size, size, 3), np.float32)
  return blank


def eval_batches(records: Sequence, image_size: int, batch_size: int,
                 workers: int = 0, hints: bool = False) -> Iterator[dict]:
  """Batches over `records` in order, centre-cropped; unusable images and padding have mask 0.

  Each batch also carries "index": the position of each example in `records` (-1 = padding).
  With `hints` (validating a hint model) each example also gets "hints" [S,S,3]: simulated
  user hints drawn as in training (`colorjax.hints.simulate_hints`), seeded by its position,
  so every score of a run sees the same hints.
  """
  n = len(records)
  padded = -(-n // batch_size) * batch_size
  ds = grain.MapDataset.range(padded).map(
      lambda i: {**(_eval_map(records[i], image_size, hints, i) if i < n else
                    _blank(image_size, hints)), "index": np.int64(i if i < n else -1)})
  it = ds.to_iter_dataset(grain.ReadOptions(num_threads=max(1, workers) * 2)).batch(batch_size)
  if workers > 0:
    _ensure_flags_parsed()
    it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers))
  return iter(it)
