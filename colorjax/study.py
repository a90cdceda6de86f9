"""The cross-domain study in one call: train three models, evaluate each on both domains, report.

  python launch.py --mode=study --config=configs/demo.py --workdir=DIR

Models (directory names are fixed whatever the domains are called): `cartoon` trains on the
config's first domain, `movie` on its second, `mixed` on both (drawn evenly, with the same
number of training images: half of each, see `train.domain_records`). Each is trained into
`DIR/<model>` by `train.train_and_evaluate`; a finished run is reused without building its
data pipeline, a half-finished one resumes. Every model's best checkpoint (lowest validation
loss) is then evaluated on the test split of both domains, next to two baselines on the same
images: `gray` (ab = 0) and `mean_ab` (the mixed model's training set's mean normalised ab,
everywhere). Results go to `DIR/report/` (see `colorjax.report`).
"""
from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from colorjax import checkpoints, color, config_lib, distributed, evaluate, logs, report
from colorjax.data import decode, sources

MODELS = ("cartoon", "movie", "mixed")
TIME_FILE = "study_time.json"        # per run dir: accumulated training wall time
MEAN_AB_MAX_IMAGES = 512             # cap on training images streamed for the mean_ab baseline
SAMPLES_PER_DOMAIN = 4               # rows of the sample grids: the first test images by index
HINT_COUNTS = (0, 1, 2, 5, 10, 20)   # hint models: the ΔE00-vs-hints curve's points
HINT_IMAGES = 16                     # ... over the first test images of each domain


def model_configs(config) -> dict:
  """{model name: config} with `data.domains` set to the first, the second and both domains."""
  domains = tuple(config.data.domains)
  if len(domains) != 2:
    raise config_lib.ConfigError(
        f"config.data.domains={domains}: the study needs exactly 2 domains (e.g. "
        "('cartoon', 'movie') or ('toon', 'photo')); it trains one model on each and one on both")
  if domains[0] == domains[1]:
    raise config_lib.ConfigError(f"config.data.domains={domains}: the two domains must differ")
  out = {}
  for name, ds in zip(MODELS, ((domains[0],), (domains[1],), domains)):
    c = config.copy_and_resolve_references()
    with c.unlocked():
      c.data.domains = ds
    out[name] = c
  return out


def schedule(config, run_dir: str | None = None) -> tuple[int, int, int]:
  """(training images, steps per epoch, total steps) of a run.

  From the run's own `metrics.jsonl` once it has started (its images are then counted after
  bad files were screened out); before that, counted from the records, loading nothing.
  """
  from colorjax import train
  starts = [r for r in logs.read_metrics(run_dir) if r.get("type") == "data"
            and "total_steps" in r] if run_dir else []
  if starts:   # its epochs as counted by the run; how many is the config's (it may grow)
    per_epoch = starts[-1]["steps_per_epoch"]
    return starts[-1]["train_images"], per_epoch, per_epoch * config.num_epochs
  n_train = sum(len(s.train) for s in train.domain_records(config).values())
  return (n_train, *train.schedule(config, n_train))


def latest_step(run_dir: str) -> int | None:
  """The run's newest complete checkpoint step, or None if it has none.

  Orbax writes a step into a temporary directory and renames it to `<step>` once complete,
  so the all-digit directory names are exactly the finished checkpoints (read without
  opening a CheckpointManager, which logs warnings in read-only mode).
  """
  directory = os.path.join(run_dir, "checkpoints")
  if not os.path.isdir(directory):
    return None
  steps = [int(n) for n in os.listdir(directory)
           if n.isdigit() and os.path.isdir(os.path.join(directory, n))]
  return max(steps, default=None)


@contextlib.contextmanager
def compilation_cache(directory: str):
  """Share compiled XLA programs between the three models through JAX's persistent cache.

  The three runs differ only in their data, so their train, eval and init programs are
  identical; compiling them once instead of three times saves about a minute per model on a
  CPU. A cache directory the user already configured (JAX_COMPILATION_CACHE_DIR) is left
  alone; otherwise `directory` is used for the duration of the study and the setting restored.
  """
  from jax.experimental.compilation_cache import compilation_cache as cc
  if jax.config.jax_compilation_cache_dir:
    yield
    return
  jax.config.update("jax_compilation_cache_dir", directory)
  try:
    yield
  finally:
    jax.config.update("jax_compilation_cache_dir", None)
    cc.reset_cache()


def _read_time(run_dir: str) -> dict:
  try:
    with open(os.path.join(run_dir, TIME_FILE)) as f:
      return json.load(f)
  except (OSError, ValueError):
    return {}


def _config_changed(config, run_dir: str) -> bool:
  """True if `run_dir/config.json` (written when the run started) differs from `config`."""
  try:
    with open(os.path.join(run_dir, "config.json")) as f:
      have = json.load(f)
  except (OSError, ValueError):
    return False
  return have != json.loads(config_lib.finalize(config).to_json_best_effort(sort_keys=True))


def train_model(name: str, config, run_dir: str) -> dict:
  """Train (or resume, or reuse) one model; returns {"status", "wall_time_s", ...}.

  The wall time is accumulated over invocations in `run_dir/study_time.json`, so a reused run
  reports the time it originally took.
  """
  n_train, per_epoch, total = schedule(config, run_dir)
  latest = latest_step(run_dir)
  info = {"train_images": n_train, "steps_per_epoch": per_epoch, "total_steps": total}
  if latest is not None and latest >= total:
    _say(f"[study] {name}: finished run reused ({run_dir}, step {latest}/{total})")
    if _config_changed(config, run_dir):
      _say(f"[study] warning: {run_dir} was trained with a different config than this one; "
            "its results are reported as they are (delete the directory to retrain)")
    return {**info, "status": "reused", "wall_time_s": _read_time(run_dir).get("wall_time_s")}
  status = "trained" if latest is None else f"resumed from step {latest}"
  _say(f"[study] {name}: training on {' + '.join(config.data.domains)} ({n_train} images, "
       f"{total} steps) into {run_dir}" + ("" if latest is None else f", resuming at {latest}"))
  from colorjax import train
  prior = _read_time(run_dir).get("wall_time_s", 0.0) if latest is not None else 0.0
  t0 = time.time()
  result = train.train_and_evaluate(config, run_dir)
  wall = prior + (time.time() - t0)
  if distributed.is_primary():
    with open(os.path.join(run_dir, TIME_FILE), "w") as f:
      json.dump({"wall_time_s": wall, "step": latest_step(run_dir)}, f)
  if result.get("preempted"):     # exit 0, as a preempted training run does (SLURM requeues)
    print(f"[study] stopped during the {name} model (step {result.get('step')}); run the same "
          "command again to resume", file=sys.stderr)
    raise SystemExit(0)
  n_train, per_epoch, total = schedule(config, run_dir)   # as screened by the run
  info = {"train_images": n_train, "steps_per_epoch": per_epoch, "total_steps": total}
  return {**info, "status": status, "wall_time_s": wall}


def constant_predictor(ab) -> Callable[[jax.Array], jax.Array]:
  """An L → ab predictor returning the same normalised ab [2] at every pixel."""
  ab = jnp.asarray(ab, jnp.float32)
  return jax.jit(lambda L: jnp.broadcast_to(ab, L.shape[:-1] + (2,)))


def training_mean_ab(config, max_images: int = MEAN_AB_MAX_IMAGES) -> tuple[np.ndarray, int]:
  """Mean normalised ab [2] over the training images of `config` (the mixed model's).

  Streams the train records through `decode.load_example` without augmentation (centre crop,
  no flip), skipping grey and unreadable images as training does; if there are more than
  `max_images`, an evenly spaced subset of that many. Returns (mean ab, images used).
  """
  from colorjax import train
  records = [r for s in train.domain_records(config).values() for r in s.train]
  if len(records) > max_images:
    records = [records[int(i)] for i in np.linspace(0, len(records) - 1, max_images)]
  total, pixels, used = np.zeros(2, np.float64), 0, 0
  for record in records:
    example = decode.load_example(record, config.image_size, None, skip_grey=True)
    if "bad" in example:
      continue
    ab = example["ab"].reshape(-1, 2)
    total += ab.sum(axis=0, dtype=np.float64)
    pixels += ab.shape[0]
    used += 1
  return (total / max(pixels, 1)).astype(np.float32), used


def _samples(predictors: dict, records: list, image_size: int, batch_size: int,
             rows: list[dict], domain: str) -> list[dict]:
  """The first SAMPLES_PER_DOMAIN usable test images with every model's prediction (RGB [0,1])."""
  examples = []
  for record in records:
    ex = decode.load_example(record, image_size, None)
    if "bad" not in ex:
      examples.append((evaluate.record_name(record), ex))
    if len(examples) == SAMPLES_PER_DOMAIN:
      break
  if not examples:
    return []
  L = np.stack([ex["L"] for _, ex in examples])
  ab = np.stack([ex["ab"] for _, ex in examples])
  # Pad to the evaluation batch so the already compiled predictor is reused.
  pad = max(batch_size - len(L), 0)
  L_in = jnp.asarray(np.concatenate([L, np.zeros((pad, *L.shape[1:]), L.dtype)]))
  to_rgb = lambda ab_: np.asarray(color.model_outputs_to_rgb(jnp.asarray(L), jnp.asarray(ab_)))
  preds = {m: to_rgb(np.asarray(p(L_in))[:len(L)]) for m, p in predictors.items()}
  grey, truth = to_rgb(np.zeros_like(ab)), to_rgb(ab)
  de = {(r["model"], r["image"]): r["delta_e"] for r in rows if r["domain"] == domain}
  return [{"image": name, "grey": grey[i], "truth": truth[i],
           "pred": {m: preds[m][i] for m in predictors},
           "delta_e": {**{m: de[(m, name)] for m in predictors if (m, name) in de},
                       # The grey input is exactly the gray baseline's prediction.
                       **({"grey input": de[("gray", name)]} if ("gray", name) in de else {})}}
          for i, (name, _) in enumerate(examples)]


def _first_vs_selected(run_dir: str, predict, batch_size: int) -> dict | None:
  """RGB of the first epoch's saved validation samples next to the selected checkpoint's
  prediction on the same images (None if the run saved none, e.g. it has no validation)."""
  from colorjax import train
  path = train.samples_path(run_dir, 1)
  if not os.path.exists(path):
    return None
  with np.load(path) as f:
    L, first, truth = (f[k].astype(np.float32) for k in ("L", "ab", "ab_true"))
    names = [str(n) for n in f["image"]]
  pad = max(batch_size - len(L), 0)   # the compiled evaluation batch
  L_in = jnp.asarray(np.concatenate([L, np.zeros((pad, *L.shape[1:]), L.dtype)]))
  selected = np.asarray(predict(L_in))[:len(L)]
  to_rgb = lambda ab: np.asarray(color.model_outputs_to_rgb(jnp.asarray(L), jnp.asarray(ab)))
  return {"image": names, "grey": to_rgb(np.zeros_like(first)), "first": to_rgb(first),
          "selected": to_rgb(selected), "truth": to_rgb(truth)}


def _selection(run_dir: str, step: int, history: list[dict]) -> dict:
  rec = next((r for r in report.epoch_records(history) if int(r["step"]) == int(step)), None)
  return {"selected_step": int(step), "selected_epoch": rec["epoch"] if rec else None,
          "selected_val_loss": rec["val_loss"] if rec else None}


def hardware() -> str:
  devices = jax.devices()
  kinds = sorted({d.device_kind for d in devices})
  try:
    cores = len(os.sched_getaffinity(0))
  except AttributeError:
    cores = os.cpu_count()
  return (f"JAX {jax.__version__} on {jax.default_backend()}: {len(devices)} device(s) "
          f"({', '.join(kinds)}); host {platform.platform()}, {platform.machine()}, "
          f"{cores} CPU cores available")


def run_study(config, workdir: str) -> str:
  """Train, evaluate and report the three-model study in `workdir`; returns report.md's path."""
  t_start = time.time()
  configs = model_configs(config)
  config = config_lib.finalize(config)
  config_lib.validate(config)
  domains = tuple(config.data.domains)
  os.makedirs(workdir, exist_ok=True)
  with compilation_cache(os.path.join(workdir, ".jax_cache")):
    return _run_study(config, configs, domains, workdir, t_start)


def _say(message: str) -> None:
  if distributed.is_primary():
    print(message, flush=True)


def _run_study(config, configs: dict, domains: tuple, workdir: str, t_start: float) -> str:
  runs = {}
  for name, cfg in configs.items():
    runs[name] = train_model(name, cfg, os.path.join(workdir, name))
    runs[name]["domains"] = list(cfg.data.domains)
  path = os.path.join(workdir, "report", "report.md")
  if not distributed.is_primary():    # several processes: process 0 evaluates and reports
    distributed.barrier("study-report")
    return path
  path = _evaluate_and_report(config, configs, domains, workdir, t_start, runs)
  distributed.barrier("study-report")
  return path


def _evaluate_and_report(config, configs: dict, domains: tuple, workdir: str, t_start: float,
                         runs: dict) -> str:

  test = evaluate.test_sets(config, domains=domains)
  batch = int(config.data.get("eval_batch_size", 32))
  rows, predictors, histories = [], {}, {}
  for name in MODELS:
    run_dir = os.path.join(workdir, name)
    model_config, variables, step = checkpoints.restore_generator(run_dir)
    predictors[name] = evaluate.generator_predictor(model_config, variables)
    histories[name] = logs.read_metrics(run_dir)
    runs[name].update(_selection(run_dir, step, histories[name]))
    print(f"[study] evaluating {name} (checkpoint step {step}) on {', '.join(domains)}", flush=True)
    rows += [{"model": name, **r} for r in
             evaluate.evaluate_domains(predictors[name], test, config.image_size, batch)]

  mean_ab, n_mean = training_mean_ab(configs["mixed"])
  for name, predict in (("gray", constant_predictor(np.zeros(2))),
                        ("mean_ab", constant_predictor(mean_ab))):
    rows += [{"model": name, **r} for r in
             evaluate.evaluate_domains(predict, test, config.image_size, batch)]

  out = os.path.join(workdir, "report")
  os.makedirs(out, exist_ok=True)
  order = (*MODELS, *report.BASELINES)
  summary = report.summarize(rows, order, domains)
  report.write_csv(os.path.join(out, "per_image.csv"), rows, report.ROW_FIELDS)
  report.write_csv(os.path.join(out, "summary.csv"), summary, report.summary_fields())

  trained_on = {m: runs[m]["domains"] for m in MODELS}
  figures = {}
  for metric, title in (("delta_e", "Colour error (ΔE00) per test domain"),
                        ("ssim", "Structural similarity (SSIM) per test domain")):
    fname = f"{metric}.png"
    report.bar_chart(summary, metric, order, domains, trained_on, os.path.join(out, fname),
                     f"{title}: mean and 95% bootstrap CI")
    figures[title] = fname
  report.loss_curves(histories, {m: {"epoch": runs[m]["selected_epoch"],
                                     "val_loss": runs[m]["selected_val_loss"]} for m in MODELS},
                     trained_on, os.path.join(out, "losses.png"))
  figures["Training and validation loss (selected epoch starred)"] = "losses.png"
  for domain in domains:
    samples = _samples(predictors, test[domain], config.image_size, batch, rows, domain)
    if samples:
      fname = f"samples_{domain}.png"
      report.sample_grid(samples, MODELS, domain, trained_on, os.path.join(out, fname))
      figures[f"Sample colourisations: {domain} test images"] = fname
  for name in MODELS:
    first = _first_vs_selected(os.path.join(workdir, name), predictors[name], batch)
    if first is not None:
      fname = f"epochs_{name}.png"
      report.epoch_samples_grid(first, name, 1, runs[name]["selected_epoch"],
                                os.path.join(out, fname))
      figures[f"First vs selected epoch: {name} (validation images)"] = fname
  hint_table = None
  if config.model.get("hints", False):
    print(f"[study] hint models: ΔE00 by number of hints on the first {HINT_IMAGES} test images "
          "of each domain", flush=True)
    hint_table = evaluate.hint_curves(
        {m: (predictors[m], True) for m in MODELS},
        {d: list(records[:HINT_IMAGES]) for d, records in test.items()}, HINT_COUNTS,
        config.image_size, config.seed, batch)
    report.hint_curves_chart(hint_table, MODELS, domains, trained_on, os.path.join(out, "hints.png"))
    figures["ΔE00 vs number of hints (each model given the hints, then propagated)"] = "hints.png"
  report.colorfulness_chart(summary, [*MODELS, "mean_ab"], domains, trained_on,
                            os.path.join(out, "colorfulness.png"))
  figures["Colourfulness: predictions vs ground truth"] = "colorfulness.png"

  data_sizes = {}
  for d in domains:
    s = sources.domain_splits(config.data, d, config.seed)
    data_sizes[d] = {"train": len(s.train), "val": len(s.val), "test": len(s.test)}
  setup = {
      "config_name": config.get("name", ""), "domains": list(domains), "model_names": list(MODELS),
      "image_size": config.image_size, "batch_size": config.batch_size,
      "num_epochs": config.num_epochs, "pretrain_epochs": config.pretrain_epochs,
      "encoder": config.model.encoder, "hardware": hardware(), "data_sizes": data_sizes,
      "models": runs, "mean_ab": [float(v) for v in mean_ab], "mean_ab_images": n_mean,
      "mean_ab_text": (f"({mean_ab[0]:+.4f}, {mean_ab[1]:+.4f}) over {n_mean} training images "
                       f"of the mixed model (centre crops, no augmentation"
                       f"{', an evenly spaced subset' if n_mean >= MEAN_AB_MAX_IMAGES else ''})"),
      "bootstrap": {"resamples": report.BOOTSTRAP_RESAMPLES, "seed": report.BOOTSTRAP_SEED,
                    "level": report.CI_LEVEL},
      "study_wall_s": time.time() - t_start,
  }
  sentences = report.findings(summary, MODELS, domains, trained_on)
  if hint_table is not None:
    sentences += report.hint_findings(hint_table, MODELS, domains)
  with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump({"setup": setup, "summary": summary, "findings": sentences,
               **({"hints": hint_table} if hint_table is not None else {})}, f, indent=2)
  path = os.path.join(out, "report.md")
  report.write_markdown(path, summary, setup, sentences, figures)
  _print_summary(summary)
  print(f"[study] report: {path}", flush=True)
  return path


def _print_summary(summary) -> None:
  print(f"{'model':>8} {'domain':>8} {'n':>4}  {'ΔE00 [95% CI]':>20}  {'SSIM':>6}  {'PSNR':>6}  "
        f"{'colour pred/true':>16}")
  for r in summary:
    print(f"{r['model']:>8} {r['domain']:>8} {r['n']:>4}  {r['delta_e_mean']:6.2f} "
          f"[{r['delta_e_ci_low']:5.2f}, {r['delta_e_ci_high']:5.2f}]  {r['ssim_mean']:6.4f}  "
          f"{r['psnr_mean']:6.2f}  {r['colorfulness_pred_mean']:7.1f}/{r['colorfulness_true_mean']:.1f}")
