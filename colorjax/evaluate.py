"""Evaluation: a trained run's best checkpoint → predictions on test images → metrics.

Writes `WORKDIR/eval.json` (per-domain means) and `WORKDIR/eval_per_image.csv`.
Metrics are computed on RGB images in [0, 1] rebuilt from the true L and the predicted ab, so
lightness is the input's and only colour is judged. Greyscale image files have no colour to
judge and are skipped, as in training (`drop_grey`).
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
from colorjax.data import decode, pipeline, sources

METRIC_KEYS = ("delta_e", "ssim", "psnr", "colorfulness_pred", "colorfulness_true")


@jax.jit
def _batch_metrics(L, ab_pred, ab_true):
  """Per-image metrics for normalised L [B,H,W,1] and ab [B,H,W,2] in [-1, 1]."""
  pred = color.model_outputs_to_rgb(L, ab_pred)
  true = color.model_outputs_to_rgb(L, ab_true)
  return metrics.image_metrics(pred, true)


def generator_apply(config) -> Callable[..., jax.Array]:
  """The jitted (variables, L, hints=None) → ab of `config`'s generator (inference mode,
  float32): compiled once, for any variables of that shape (e.g. every validation step)."""
  g_model, _ = models.build_models(config)
  g_model = g_model.clone(dtype=jnp.float32)
  return jax.jit(lambda v, L, hints=None: g_model.apply(v, L, hints=hints, train=False))


def generator_predictor(config, variables) -> Callable[..., jax.Array]:
  """A jitted (L, hints=None) → ab function for a trained generator (inference mode, float32).

  `hints` [B,H,W,3] only for a hint model (`config.model.hints`); None = automatic mode.
  """
  return functools.partial(generator_apply(config), variables)


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


def folder_labels(folders: Sequence[str]) -> dict[str, str]:
  """{label: folder} for `--eval_dirs`: each folder's shortest path suffix that no other
  folder's path ends with (x/test and y/test; the base name when that is unique).

  A folder given twice (the same real path, e.g. again through a symbolic link) is kept once:
  scoring the same images twice only doubles the time, and a shell glob that repeats a
  folder is harmless, so it is not an error.
  """
  unique, seen = [], set()
  for f in folders:
    if os.path.realpath(f) not in seen:
      seen.add(os.path.realpath(f))
      unique.append(f)
  parts = [[p for p in os.path.abspath(f).split(os.sep) if p] for f in unique]
  return {_shortest_unique_suffix(i, parts, unique[i]): unique[i] for i in range(len(unique))}


def _shortest_unique_suffix(i: int, parts: list[list[str]], folder: str) -> str:
  for k in range(1, len(parts[i]) + 1):
    tail = parts[i][-k:]
    if not any(q[-k:] == tail for j, q in enumerate(parts) if j != i):
      return "/".join(tail)
  # Its whole path ends another's (/test and /x/test): the absolute path is still distinct.
  return os.path.abspath(folder)


def drop_grey(records: Sequence, image_size: int, where: str,
              cache_path: str | None = None) -> tuple[list, int]:
  """(`records` without greyscale image files, how many were dropped).

  A grey image has no colour to score (its ΔE00 is near 0 whatever the model does), and
  training skips such files with the same check (`decode.scan_files`, at `image_size` px).
  Unusable files are kept: evaluation masks them itself. DataError naming `where` when no
  colour image is left. Built-in and TFDS records are not screened (as in training's
  `screen_records`).
  """
  files = [r[1] for r in records if r[0] == "file"]
  if not files:
    return list(records), 0
  status = decode.scan_files(files, image_size, cache_path)
  kept = [r for r in records if r[0] != "file" or status[r[1]][0] != "grey"]
  n_grey = len(records) - len(kept)
  if n_grey and not any(r[0] != "file" or status[r[1]][0] == "ok" for r in kept):
    raise sources.DataError(f"{where}: all {n_grey} images are greyscale (no colour to score)"
                            if not kept else f"{where}: no colour image to score ({n_grey} "
                            f"greyscale, {len(kept)} unusable)")
  return kept, n_grey


def screened_test_sets(config, eval_dirs: Sequence[str] | None = None,
                       domains: Sequence[str] | None = None,
                       cache_path: str | None = None) -> tuple[dict[str, list], dict[str, int]]:
  """(test records per name, greyscale images dropped per name): the config's domains' test
  splits, or whole `eval_dirs` folders named by `folder_labels`. Greyscale files are dropped
  from both: the test split is drawn before any screening, so it does not depend on it."""
  if eval_dirs:
    where = folder_labels(eval_dirs)
    sets = {label: sources.folder_test_records(folder) for label, folder in where.items()}
  else:
    names = list(domains or config.data.domains)
    where = {d: f"domain {d} (test split)" for d in names}
    sets = {d: sources.domain_splits(config.data, d, config.seed).test for d in names}
  grey = {}
  for name in sets:
    sets[name], grey[name] = drop_grey(sets[name], config.image_size, where[name], cache_path)
  return sets, grey


def test_sets(config, eval_dirs: Sequence[str] | None = None,
              domains: Sequence[str] | None = None) -> dict[str, list]:
  """Test records per domain, greyscale files dropped (`screened_test_sets`)."""
  return screened_test_sets(config, eval_dirs, domains)[0]


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
  """Evaluate the best (or `step`) checkpoint of `workdir`; writes eval.json and per-image CSV.

  Each domain's entry holds "n" (images scored), the metric means and "grey_skipped".
  """
  config, variables, step = checkpoints.restore_generator(workdir, step)
  predict = generator_predictor(config, variables)
  sets, grey = screened_test_sets(config, eval_dirs, domains, scan_cache(workdir))
  rows = evaluate_domains(predict, sets, config.image_size, config.data.get("eval_batch_size", 32))
  results = {name: {**summarize([r for r in rows if r["domain"] == name]),
                    "grey_skipped": grey[name]} for name in sets}
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
    for name, n in grey.items():
      if n:
        print(f"  {name}: skipped {n} grey image{'s' * (n != 1)} (no colour to score)")
    print(f"wrote {os.path.join(workdir, 'eval.json')}")
  return report


def scan_cache(workdir: str) -> str:
  """Training's decode cache (train.py): same files at the same size give the same answers."""
  return os.path.join(workdir, decode.SCAN_CACHE)


# --- Evaluation by number of hints ---------------------------------------------------------

HINT_METRICS = ("delta_e", "ssim", "psnr")
PROPAGATION = "propagation"          # hint propagation alone, over a grey prior


def parse_hint_counts(text: str) -> list[int]:
  """"0,1,2,5,10,20" → [0, 1, 2, 5, 10, 20]; ConfigError naming --hints otherwise."""
  from colorjax.config_lib import ConfigError
  try:
    counts = [int(c) for c in str(text).split(",") if c.strip()]
  except ValueError:
    counts = []
  if not counts or min(counts) < 0:
    raise ConfigError(f"--hints={text}: expected hint counts like 0,1,2,5,10,20 (integers >= 0)")
  return counts


def hint_points(ab_norm: np.ndarray, n: int, seed: int, domain_index: int, image_index: int):
  """The `n` hints sampled from the truth of one test image: (hint a*b* [h,w,2] in Lab units,
  mask [h,w]). Seeded by (seed, domain, image) and nested over n, so every model and method,
  and every count, sees the same points (`colorjax.hints.sample_from_truth`)."""
  from colorjax import hints as hints_lib
  rng = np.random.default_rng((seed, domain_index, image_index))
  s = hints_lib.sample_from_truth(color.denormalize_ab(ab_norm), n, rng)
  return s.hint_ab, s.mask


def hint_curves(models_: dict, domain_records: dict, counts: Sequence[int], image_size: int,
                seed: int = 0, batch_size: int = 8) -> dict:
  """ΔE00, SSIM and PSNR per number of hints sampled from the truth, per method and domain.

  `models_`: {name: (predict, takes_hints)} with `predict(L, hints=None)` as
  `generator_predictor` gives. Methods: "propagation" (hints spread over a grey prior), and
  for each model "<name>" (alone: automatic, or given the hints if it takes them) and
  "<name>+propagation" (its prediction as the prior the hints are propagated over). Images
  are centre crops of `image_size`; unusable ones are skipped. Returns
  {"counts", "seed", "image_size", "methods": {method: {domain: {count: {metric: mean, "n"}}}}}.
  """
  from colorjax import hints as hints_lib
  from colorjax.data import decode
  methods = [PROPAGATION] + [m for name in models_ for m in (name, f"{name}+propagation")]
  per = {m: {d: {n: {k: [] for k in HINT_METRICS} for n in counts} for d in domain_records}
         for m in methods}
  for di, (domain, records) in enumerate(domain_records.items()):
    examples = []
    for i, record in enumerate(records):
      ex = decode.load_example(record, image_size, None)
      if "bad" not in ex:
        examples.append((i, ex))
    for start in range(0, len(examples), batch_size):
      chunk = examples[start:start + batch_size]
      L = np.stack([ex["L"] for _, ex in chunk])
      ab = np.stack([ex["ab"] for _, ex in chunk])
      lightness = np.asarray(color.denormalize_l(L[..., 0]))
      auto = {name: np.asarray(p(jnp.asarray(L))) for name, (p, _) in models_.items()}
      for n in counts:
        pts = [hint_points(ex["ab"], n, seed, di, i) for i, ex in chunk]
        preds = {}
        grey = np.zeros_like(ab[..., 0:2])
        preds[PROPAGATION] = _propagate_all(lightness, pts, grey)
        for name, (predict, takes_hints) in models_.items():
          own = auto[name]
          if takes_hints and n > 0:
            h = np.stack([hints_lib.model_hint_input(a, m) for a, m in pts])
            own = np.asarray(predict(jnp.asarray(L), jnp.asarray(h)))
          preds[name] = own
          preds[f"{name}+propagation"] = _propagate_all(lightness, pts, own)
        for method, pred in preds.items():
          values = jax.device_get(_batch_metrics(L, pred, ab))
          for k in HINT_METRICS:
            per[method][domain][n][k].extend(np.asarray(values[k]).tolist())
  out = {"counts": list(counts), "seed": seed, "image_size": image_size, "methods": {}}
  for method, domains in per.items():
    out["methods"][method] = {
        d: {str(n): {"n": len(v["delta_e"]), **{k: float(np.mean(v[k])) if v[k] else float("nan")
                                                for k in HINT_METRICS}}
            for n, v in by_n.items()} for d, by_n in domains.items()}
  return out


def _propagate_all(lightness: np.ndarray, points: list, prior_norm: np.ndarray) -> np.ndarray:
  """Normalised ab [B,h,w,2]: each image's hints propagated over its prior (normalised ab)."""
  from colorjax import hints as hints_lib
  out = []
  for Lstar, (hint_ab, mask), prior in zip(lightness, points, prior_norm):
    if not mask.any():          # no hint: the prior itself (what propagate returns anyway)
      out.append(prior)
      continue
    ab = hints_lib.propagate(Lstar, hint_ab, mask, color.denormalize_ab(prior))
    out.append(color.normalize_ab(np.asarray(ab)))
  return np.clip(np.stack(out), -1, 1).astype(np.float32)


def format_hint_table(table: dict) -> str:
  """A text table: one row per method and number of hints, ΔE00 / SSIM / PSNR per domain."""
  domains = list(next(iter(table["methods"].values())))
  head = f"{'method':>28} {'hints':>5}" + "".join(f"  {d[:12]:>12} ΔE00   SSIM   PSNR" for d in domains)
  lines = [head]
  for method, by_domain in table["methods"].items():
    for n in table["counts"]:
      cells = "".join(f"  {'':>12}{by_domain[d][str(n)]['delta_e']:5.2f} "
                      f"{by_domain[d][str(n)]['ssim']:6.4f} {by_domain[d][str(n)]['psnr']:6.2f}"
                      for d in domains)
      lines.append(f"{method:>28} {n:>5}{cells}")
  return "\n".join(lines)


def evaluate_hints(workdir: str, counts: Sequence[int], eval_dirs: Sequence[str] | None = None,
                   step: int | None = None, seed: int = 0, print_summary: bool = False) -> dict:
  """`--mode=eval --hints=...`: the run's model by number of hints; adds a "hints" section to
  WORKDIR/eval.json (written after the plain evaluation, kept if it exists)."""
  config, variables, step = checkpoints.restore_generator(workdir, step)
  predict = generator_predictor(config, variables)
  sets, _ = screened_test_sets(config, eval_dirs, cache_path=scan_cache(workdir))
  takes_hints = bool(config.model.get("hints", False))
  table = hint_curves({"model": (predict, takes_hints)}, sets, counts, config.image_size, seed,
                      int(config.data.get("eval_batch_size", 32)))
  table["step"] = int(step)
  table["takes_hints"] = takes_hints
  path = os.path.join(workdir, "eval.json")
  report = {}
  if os.path.exists(path):
    with open(path) as f:
      report = json.load(f)
  report["hints"] = table
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(report, f, indent=2)
  os.replace(tmp, path)
  if print_summary:
    what = "given the hints" if takes_hints else "automatic (trained without hints)"
    print(f"{workdir} (checkpoint step {step}) by number of hints sampled from the truth; "
          f"model: {what}")
    print(format_hint_table(table))
    print(f"wrote the hints section of {path}")
  return table
