"""Evaluation: a trained run's best checkpoint → predictions on test images → metrics.

Writes `WORKDIR/eval.json` (per-domain means) and `WORKDIR/eval_per_image.csv`.
Metrics are computed on RGB images in [0, 1] rebuilt from the true L and the predicted ab, so
lightness is the input's and only colour is judged.
"""
from __future__ import annotations

import csv
import functools
import json
import os
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from colorjax import checkpoints, color, metrics, models
from colorjax.data import pipeline, sources

METRIC_KEYS = ("delta_e", "ssim", "psnr", "colorfulness_pred", "colorfulness_true")


@jax.jit
def _batch_metrics(L, ab_pred, ab_true):
  """Per-image metrics for normalised L [B,H,W,1] and ab [B,H,W,2] in [-1, 1]."""
  pred = color.model_outputs_to_rgb(L, ab_pred)
  true = color.model_outputs_to_rgb(L, ab_true)
  return metrics.image_metrics(pred, true)


def generator_predictor(config, variables) -> Callable[[np.ndarray], jax.Array]:
  """A jitted L → ab function for a trained generator (inference mode, float32)."""
  g_model, _ = models.build_models(config)
  g_model = g_model.clone(dtype=jnp.float32)
  apply = jax.jit(lambda v, L: g_model.apply(v, L, train=False))
  return functools.partial(apply, variables)


def evaluate_records(records: Sequence, predict_ab: Callable, image_size: int,
                     batch_size: int = 32, workers: int = 0) -> dict[str, np.ndarray]:
  """Per-image metrics of `predict_ab` on `records` (unusable images dropped).

  Returns arrays keyed by METRIC_KEYS plus "index" (the record's position in `records`).
  """
  out = {k: [] for k in (*METRIC_KEYS, "index")}
  for batch in pipeline.eval_batches(records, image_size, batch_size, workers):
    keep = batch["mask"] > 0
    if not keep.any():
      continue
    ab_pred = predict_ab(jnp.asarray(batch["L"]))
    values = jax.device_get(_batch_metrics(batch["L"], ab_pred, batch["ab"]))
    for k in METRIC_KEYS:
      out[k].append(np.asarray(values[k])[keep])
    out["index"].append(batch["index"][keep])
  return {k: np.concatenate(v) if v else np.zeros((0,)) for k, v in out.items()}


def record_name(record) -> str:
  """A human-readable id for a record (file path, or builtin domain/split/index)."""
  if record[0] == "file":
    return record[1]
  return "/".join(str(x) for x in record)


def test_sets(config, eval_dirs: Sequence[str] | None = None,
              domains: Sequence[str] | None = None) -> dict[str, list]:
  """Test records per domain: the config's domains' test splits, or whole folders."""
  if eval_dirs:
    return {os.path.basename(os.path.normpath(d)) or d: sources.folder_test_records(d)
            for d in eval_dirs}
  return {d: sources.domain_splits(config.data, d, config.seed).test
          for d in (domains or config.data.domains)}


def evaluate_domains(predict_ab: Callable, domain_records: dict[str, Sequence], image_size: int,
                     batch_size: int = 32, workers: int = 0) -> list[dict]:
  """Per-image rows {"domain", "image", *METRIC_KEYS} of `predict_ab` on each domain's records."""
  rows = []
  for name, records in domain_records.items():
    per_image = evaluate_records(records, predict_ab, image_size, batch_size, workers)
    for i, idx in enumerate(per_image["index"]):
      rows.append({"domain": name, "image": record_name(records[int(idx)]),
                   **{k: float(per_image[k][i]) for k in METRIC_KEYS}})
  return rows


def summarize(rows: Sequence[dict]) -> dict[str, float]:
  """Image count and mean of each metric over per-image rows."""
  return {"n": len(rows), **{k: float(np.mean([r[k] for r in rows])) if rows else float("nan")
                             for k in METRIC_KEYS}}


def evaluate_run(workdir: str, eval_dirs: Sequence[str] | None = None, step: int | None = None,
                 domains: Sequence[str] | None = None, print_summary: bool = False) -> dict:
  """Evaluate the best (or `step`) checkpoint of `workdir`; writes eval.json and per-image CSV."""
  config, variables, step = checkpoints.restore_generator(workdir, step)
  predict = generator_predictor(config, variables)
  sets = test_sets(config, eval_dirs, domains)
  rows = evaluate_domains(predict, sets, config.image_size, config.data.get("eval_batch_size", 32))
  results = {name: summarize([r for r in rows if r["domain"] == name]) for name in sets}
  report = {"workdir": os.path.abspath(workdir), "step": int(step), "domains": results}
  with open(os.path.join(workdir, "eval.json"), "w") as f:
    json.dump(report, f, indent=2)
  with open(os.path.join(workdir, "eval_per_image.csv"), "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=["domain", "image", *METRIC_KEYS])
    writer.writeheader()
    writer.writerows(rows)
  if print_summary:
    print(f"{workdir} (checkpoint step {step}):")
    for name, r in results.items():
      print(f"  {name:>10}: ΔE00 {r['delta_e']:.2f}  SSIM {r['ssim']:.4f}  PSNR {r['psnr']:.2f} dB"
            f"  colourfulness {r['colorfulness_pred']:.1f} (truth {r['colorfulness_true']:.1f})"
            f"  [{r['n']} images]")
    print(f"wrote {os.path.join(workdir, 'eval.json')}")
  return report
