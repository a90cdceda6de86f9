"""The study's recipe vs vivid colour, trained side by side on real images for the same steps.

  nice python benchmarks/vivid.py [--steps 600] [--size 64] [--variants recipe,vivid] [--seed 0]
                                  [--val-every 50] [--crop-scale 1] [--video-every 0]
                                  [--data /work/shared/data]
                                  [--out runs/bench_vivid]
  python benchmarks/vivid.py --frontier runs/a,runs/b --out docs   # redraw, no training
  python benchmarks/vivid.py --pool runs/f0,runs/f1,runs/f2,runs/f3 --out runs/pooled
  python benchmarks/vivid.py --redecode runs/f0,runs/f1 --adjust -0.5,0,0.5 --temperatures 0.6,1

Data: /work/shared/data's Kodak photos (domain `photos`, movie-like) and Sintel frames
(`animation`). Test images are held out by group (manifest.csv): whole Sintel shots, so no
frame of a test shot is trained on; the 24 Kodak photos are independent scenes that share one
manifest group, so each photo counts as its own group. Every variant trains one mixed model on
all training images of both domains (configs/demo.py's CPU-sized ResNet18-UNet, 70×70
PatchGAN, batch 16, GAN from the first step) for exactly `--steps` steps from the same seed and
data order. A validation set (`--val-fraction` of each domain, whole groups, never tested on)
is scored every `--val-every` steps and each model's best step colorizes the test images
(centre crops at `--size`), as the recipe selects its best epoch (`--val-every 0`: the final
parameters, as measured before). `--crop-scale` < 1 trains on random zoomed-in crops;
`--video-every N` adds every N-th frame of the data's video clips to the training images
(`benchmarks/video_frames.py`). `--folds K --fold k` holds out fold k of K folds of whole
groups instead; run every k, then `--pool` their OUT dirs: every image is tested once, by the
run that did not train on it (24 photos instead of 6).

Variants: `recipe` = configs/default.py's loss (L1 λ = 100 + GAN); `vivid` = the
classification head (rebalanced soft cross-entropy + GAN, no L1; configs/vivid.py's loss
options, annealed mean T = 0.6); `vivid_nr` = vivid without class rebalancing (λ = 1: the
plain soft cross-entropy, so the predicted distribution is the model's calibrated belief and
only the decoding temperature adds colour); `colorful` = the recipe plus a colourfulness-gap
term (λ_M = --colorfulness-weight); `vivid_l1` = vivid plus L1 (λ = 10) on the annealed
mean. `NAME:λ_M` adds the colourfulness-gap term with that weight to any variant (e.g.
`colorful:0.3`, `vivid_l1:0.1`). All are automatic models (`config.model.hints = False`).

`--temperatures` also scores each classification model decoded at other annealed-mean
temperatures (no retraining: T is a decoding choice). Prints per variant × domain:
colourfulness relative to the truth's, ΔE00 (mean, 95% bootstrap CI) beside grey's (ab = 0)
and the recipe's, SSIM; steps and training seconds. Writes
OUT/summary.json, OUT/per_image.csv, OUT/samples_<domain>.png (the same test images from every
variant), OUT/table.md and, with `--temperatures`, OUT/frontier.png: colourfulness against ΔE00
per decoded T beside the recipe, grey and issue 16's goal region. `--save-params` also keeps
each model (OUT/NAME.msgpack: G's variables and the class prior), and `--redecode` decodes the
saved classification models again, with a logit adjustment α besides T (`--adjust`).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from colorjax import xla_flags  # noqa: E402

xla_flags.apply()

import flax.serialization  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import select_train, video_frames  # noqa: E402
from colorjax import ab_bins, config_lib, evaluate, losses, models, report, study  # noqa: E402

DOMAINS = {"animation": "cartoon", "photos": "movie"}   # shared-data folder → config domain


def split_by_group(data: str, test_fraction: float, seed: int, val_fraction: float = 0.0,
                   folds: int = 0, fold: int = 0) -> dict[str, dict[str, list]]:
  """{folder: {"train", "val", "test": records, "test_groups"}}, whole groups held out per
  folder from one seeded order: the test groups first (the first `test_fraction` of the
  images, or with `folds` > 0 fold number `fold` of a split into that many folds of about
  equal size), then validation groups (so the test set does not depend on `val_fraction`)."""
  groups: dict[str, dict[str, list]] = {}
  with open(os.path.join(data, "manifest.csv"), newline="") as f:
    for row in csv.DictReader(f):
      if row["folder"] not in DOMAINS:
        continue
      # Kodak: independent photos under one manifest group; each is its own group here.
      group = row["file"] if row["group"] == "kodak" else row["group"]
      groups.setdefault(row["folder"], {}).setdefault(group, []).append(
          ("file", os.path.join(data, row["folder"], row["file"])))
  rng = np.random.default_rng(seed)
  out = {}
  for folder, by_group in groups.items():
    names = sorted(by_group)
    order = [names[i] for i in rng.permutation(len(names))]
    total = sum(map(len, by_group.values()))
    if folds:
      test_groups = _folds(order, by_group, folds)[fold]
    else:
      test_groups = _take(order, by_group, test_fraction * total)
    val_groups = _take([n for n in order if n not in test_groups], by_group,
                       val_fraction * total)

    def pick(chosen):
      return sorted(r for n in chosen for r in by_group[n])
    out[folder] = {"train": pick(n for n in names if n not in test_groups + val_groups),
                   "val": pick(val_groups), "test": pick(test_groups),
                   "test_groups": sorted(test_groups)}
  return out


def _take(order: list[str], by_group: dict, images: float) -> list[str]:
  """Whole groups, in order, until they hold at least `images` images."""
  taken, count = [], 0
  for name in order:
    if count >= images:
      break
    taken.append(name)
    count += len(by_group[name])
  return taken


def _folds(order: list[str], by_group: dict, folds: int) -> list[list[str]]:
  """The groups dealt, in order, into `folds` folds, each to the one with the fewest images."""
  out, sizes = [[] for _ in range(folds)], [0] * folds
  for name in order:
    k = sizes.index(min(sizes))
    out[k].append(name)
    sizes[k] += len(by_group[name])
  return out


def variant_config(spec: str, size: int, colorfulness_weight: float, seed: int = 0,
                   crop_scale: float = 1.0):
  """The config of a variant `NAME[:λ_M]`; `:λ_M` sets the colourfulness-gap weight (any
  variant; `colorful` without it uses --colorfulness-weight)."""
  from configs import demo, vivid
  name, _, weight = spec.partition(":")
  config = demo.get_config()
  config.image_size = size
  config.pretrain_epochs = 0
  config.seed = seed
  config.data.crop_scale = crop_scale
  config.model.hints = False         # the study compares automatic models (demo.py takes hints)
  if name in ("vivid", "vivid_l1", "vivid_nr"):
    config.loss = vivid.get_config().loss
    config.loss.kind = "classification"
    config.loss.l1_weight = 10.0 if name == "vivid_l1" else 0.0
    config.loss.colorfulness_weight = 0.0
    if name == "vivid_nr":
      config.loss.rebalance_lambda = 1.0
  elif name == "colorful":
    config.loss.colorfulness_weight = colorfulness_weight
  elif name != "recipe":
    raise SystemExit(f"--variants: unknown variant {name!r} "
                     "(recipe, vivid, vivid_nr, colorful, vivid_l1)")
  if weight:
    try:
      config.loss.colorfulness_weight = float(weight)
    except ValueError:
      raise SystemExit(f"--variants: {spec!r}: expected NAME[:colourfulness weight]") from None
  config.name = spec
  return config_lib.finalize(config)


def train_variant(config, train_records: list[list], val_records: list, steps: int,
                  val_every: int):
  """(G variables, info, a*b* class prior or None) after `steps` GAN steps, of the best
  validation step if `val_every`."""
  prior, info = None, {}
  if config.loss.kind == "classification":
    t0 = time.time()
    prior, images, pixels = ab_bins.prior_from_records(
        [r for recs in train_records for r in recs], config.image_size)
    info = {"prior_images": images, "prior_pixels": pixels, "prior_s": time.time() - t0,
            "bins": int(prior.size), "bins_seen": int((prior > 0).sum())}
  state, _, trained = select_train.train_best(config, train_records, val_records, steps,
                                              val_every=val_every, ab_prior=prior)
  info.update(trained, wall_s=trained["seconds"])
  return {"params": state.g.params, "batch_stats": state.g.batch_stats}, info, prior


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--steps", type=int, default=600)
  p.add_argument("--size", type=int, default=64)
  p.add_argument("--variants", default="recipe,vivid")
  p.add_argument("--colorfulness-weight", type=float, default=0.5)
  p.add_argument("--temperatures", default="",
                 help="classification variants: also decode at these annealed-mean T, e.g. 0.6,1")
  p.add_argument("--test-fraction", type=float, default=0.25)
  p.add_argument("--val-every", type=int, default=50,
                 help="score the validation images every N steps and keep each model's best "
                      "step (the recipe's model selection); 0 = final parameters, no validation")
  p.add_argument("--val-fraction", type=float, default=0.1,
                 help="share of each domain's images (whole groups) held out for validation")
  p.add_argument("--crop-scale", type=float, default=1.0,
                 help="training crops: side in [crop-scale, 1] × the short side "
                      "(config.data.crop_scale; 1 = the recipe's)")
  p.add_argument("--video-every", type=int, default=0,
                 help=video_frames.HELP)
  p.add_argument("--seed", type=int, default=0, help="initialisation and data order")
  p.add_argument("--split-seed", type=int, default=0,
                 help="which groups are held out (kept apart from --seed: a 2nd training seed "
                      "is scored on the same test images)")
  p.add_argument("--folds", type=int, default=0,
                 help="hold out fold --fold of this many folds of whole groups instead of "
                      "--test-fraction (run every fold, then --pool them: each image is "
                      "tested once)")
  p.add_argument("--fold", type=int, default=0)
  p.add_argument("--redecode", default="",
                 help="no training: decode the classification models saved by earlier runs "
                      "(--save-params; comma-separated OUT dirs, e.g. the folds of one seed) "
                      "again, at every --adjust × --temperatures, and pool them with those "
                      "runs' recipe and grey into OUT/table.md")
  p.add_argument("--adjust", default="0",
                 help="--redecode: logit adjustments α, comma-separated: decode "
                      "softmax((ẑ − α·log w) / T), w the run's rebalancing weights (α = 1 "
                      "undoes the rebalancing, α < 0 strengthens it)")
  p.add_argument("--save-params", action="store_true",
                 help="also write each model's G variables (and class prior) to "
                      "OUT/NAME.msgpack (flax.serialization), to decode them again without "
                      "retraining")
  p.add_argument("--data", default="/work/shared/data")
  p.add_argument("--out", default="runs/bench_vivid")
  p.add_argument("--frontier", default="",
                 help="no training: draw OUT/frontier.png from earlier runs' OUT dirs, "
                      "comma-separated (e.g. two seeds run with --temperatures)")
  p.add_argument("--pool", default="",
                 help="no training: pool the per-image results of earlier runs on disjoint "
                      "test images (the --folds of one seed; comma-separated OUT dirs) into "
                      "OUT's table.md, summary.json and frontier.png")
  args = p.parse_args()
  if args.frontier:
    return frontier_of(args.frontier.split(","), args.out)
  if args.pool:
    return pool(args.pool.split(","), args.out)
  if args.redecode:
    return redecode(args.redecode.split(","), args.out, _floats(args.adjust, "--adjust"),
                    _floats(args.temperatures or "0.6", "--temperatures"))
  if args.folds and not 0 <= args.fold < args.folds:
    raise SystemExit(f"--fold={args.fold}: must be in [0, --folds={args.folds})")
  if not os.path.exists(os.path.join(args.data, "manifest.csv")):
    raise SystemExit(f"--data={args.data}: no manifest.csv (the shared real images)")
  os.makedirs(args.out, exist_ok=True)
  if not 0 < args.crop_scale <= 1:
    raise SystemExit(f"--crop-scale={args.crop_scale}: must be in (0, 1]")
  split = split_by_group(args.data, args.test_fraction, args.split_seed,
                         args.val_fraction if args.val_every else 0.0, args.folds, args.fold)
  frames = video_frames.training_frames(args.data, args.video_every)
  train_records = [split[f]["train"] + frames[f] for f in DOMAINS]
  val_records = [r for f in DOMAINS for r in split[f]["val"]]
  test = {f: split[f]["test"] for f in DOMAINS}
  for f in DOMAINS:
    print(f"{f}: {len(split[f]['train'])} train (+ {len(frames[f])} video frames), "
          f"{len(split[f]['val'])} validation, {len(test[f])} test images "
          f"(held-out groups: {', '.join(split[f]['test_groups'])})", flush=True)

  names = args.variants.split(",")
  rows, predictors, runs, extra = [], {}, {}, []
  for name in names:
    config = variant_config(name, args.size, args.colorfulness_weight, args.seed, args.crop_scale)
    print(f"training {name}: {args.steps} steps, batch {config.batch_size}, {args.size} px, "
          f"loss {config.loss.to_dict()}", flush=True)
    variables, info, prior = train_variant(config, train_records, val_records, args.steps,
                                           args.val_every)
    runs[name] = info
    kept = (f", best validation L1 {info['best_val_l1']:.4f} at step {info['best_step']}"
            if args.val_every else "")
    print(f"  {name}: {info['wall_s']:.0f} s{kept}", flush=True)
    if args.save_params:
      with open(os.path.join(args.out, f"{name}.msgpack"), "wb") as f:
        f.write(flax.serialization.to_bytes({**jax.device_get(variables), "ab_prior": prior}))
    predictors[name] = evaluate.generator_predictor(config, variables)
    rows += [{"model": name, **r} for r in
             evaluate.evaluate_domains(predictors[name], test, args.size, 16)]
    if config.loss.kind == "classification":   # the same model decoded at other temperatures
      for t in filter(None, args.temperatures.split(",")):
        c = config.copy_and_resolve_references()
        c.loss.temperature = float(t)
        rows += [{"model": f"{name}@T={t}", **r} for r in evaluate.evaluate_domains(
            evaluate.generator_predictor(c, variables), test, args.size, 16)]
        runs[f"{name}@T={t}"] = runs[name]
        extra.append(f"{name}@T={t}")
    # Written after every variant: a long run stopped later keeps what it measured.
    report.write_csv(os.path.join(args.out, "per_image.csv"), rows, report.ROW_FIELDS)
    with open(os.path.join(args.out, "runs.json"), "w") as f:
      json.dump(runs, f, indent=2)
  rows += [{"model": "gray", **r} for r in
           evaluate.evaluate_domains(study.constant_predictor(np.zeros(2)), test, args.size, 16)]
  summary = report.summarize(rows, [*names, *extra, "gray"], list(DOMAINS))
  report.write_csv(os.path.join(args.out, "per_image.csv"), rows, report.ROW_FIELDS)
  for folder in DOMAINS:
    samples = study._samples(predictors, test[folder], args.size, 16, rows, folder)
    report.sample_grid(samples, names, folder, {n: ["animation", "photos"] for n in names},
                       os.path.join(args.out, f"samples_{folder}.png"))
  if extra:
    frontier_chart({"": summary}, os.path.join(args.out, "frontier.png"))
  table = results_table(summary, [*names, *extra], runs)
  print(table)
  with open(os.path.join(args.out, "table.md"), "w") as f:
    f.write(table + "\n")
  with open(os.path.join(args.out, "summary.json"), "w") as f:
    json.dump({"args": vars(args), "runs": runs, "summary": summary,
               "split": {k: {"train": len(v["train"]), "test": len(v["test"]),
                             "test_groups": v["test_groups"]} for k, v in split.items()}},
              f, indent=2)
  print(f"wrote {args.out}/table.md, summary.json, per_image.csv, samples_*.png")


def _floats(text: str, flag: str) -> list[float]:
  try:
    return [float(x) for x in text.split(",")]
  except ValueError:
    raise SystemExit(f"{flag}={text}: expected comma-separated numbers") from None


def adjusted_predictor(config, variables, alpha: float, temperature: float, log_w):
  """(L, hints=None) → normalised ab of a classification model decoded as the annealed mean
  of softmax((ẑ − α·log w) / T): logit adjustment by the rebalancing weights w [K]."""
  g_model, _ = models.build_models(config)
  decoding = config.copy_and_resolve_references()
  decoding.loss.temperature = temperature
  shift = alpha * jnp.asarray(log_w, jnp.float32)

  @jax.jit
  def predict(L, hints=None):
    logits = g_model.apply(variables, L, train=False, return_logits=True)
    return losses.decode(logits - shift, decoding)
  return predict


def redecode(dirs: list[str], out: str, adjusts: list[float], temperatures: list[float]) -> None:
  """One table, pooled over runs on disjoint test images, of their saved classification models
  decoded at every (α, T), beside the runs' own recipe and grey rows."""
  rows, runs = [], {}
  for d in dirs:
    rows += [r for r in report.read_per_image(_finished(d, "--redecode", "per_image.csv"))
             if r["model"] in ("recipe", "gray")]
    with open(_finished(d, "--redecode", "summary.json")) as f:
      run = json.load(f)
    a = run["args"]
    split = split_by_group(a["data"], a["test_fraction"], a["split_seed"], 0.0, a["folds"],
                           a["fold"])
    test = {f: split[f]["test"] for f in DOMAINS}
    runs.setdefault("recipe", run["runs"]["recipe"])
    for name in [n for n in run["runs"] if "@" not in n]:
      config = variant_config(name, a["size"], a["colorfulness_weight"], a["seed"],
                              a.get("crop_scale", 1.0))
      if config.loss.kind != "classification":
        continue
      with open(_finished(d, "--redecode (runs with --save-params)", f"{name}.msgpack"),
                "rb") as f:
        saved = flax.serialization.msgpack_restore(f.read())
      log_w = np.log(losses.class_weights(config, np.asarray(saved["ab_prior"])))
      variables = {"params": saved["params"], "batch_stats": saved["batch_stats"]}
      for alpha in adjusts:
        for t in temperatures:
          label = f"{name}@α={alpha:g},T={t:g}"
          runs.setdefault(label, run["runs"][name])
          rows += [{"model": label, **r} for r in evaluate.evaluate_domains(
              adjusted_predictor(config, variables, alpha, t, log_w), test, a["size"], 16)]
  _write_pooled(rows, runs, out, "--redecode")
  print(f"wrote {out}/table.md, per_image.csv")


def _write_pooled(rows: list[dict], runs: dict, out: str, flag: str) -> list[dict]:
  """Summary and table of rows from runs on disjoint test images (refused otherwise), printed
  and written to OUT/table.md and OUT/per_image.csv."""
  tested = [(r["model"], r["image"]) for r in rows]
  if len(set(tested)) < len(tested):
    raise SystemExit(f"{flag}: an image is tested by two runs (give the folds of one seed)")
  names = [m for m in dict.fromkeys(r["model"] for r in rows) if m != "gray"]
  summary = report.summarize(rows, [*names, "gray"], list(DOMAINS))
  table = results_table(summary, names, runs)
  print(table)
  os.makedirs(out, exist_ok=True)
  report.write_csv(os.path.join(out, "per_image.csv"), rows, report.ROW_FIELDS)
  with open(os.path.join(out, "table.md"), "w") as f:
    f.write(table + "\n")
  return summary


def _finished(d: str, flag: str, name: str) -> str:
  """The path of `name` in the run dir `d`, or a one-line error naming the flag and file."""
  path = os.path.join(d, name)
  if not os.path.exists(path):
    raise SystemExit(f"{flag}: {path}: not found (a finished benchmarks/vivid.py run)")
  return path


def frontier_of(dirs: list[str], out: str) -> None:
  """OUT/frontier.png of earlier runs, each labelled by its seed."""
  summaries = {}
  for d in dirs:
    with open(_finished(d, "--frontier", "summary.json")) as f:
      run = json.load(f)
    summaries[f"seed {run['args']['seed']}"] = run["summary"]
  os.makedirs(out, exist_ok=True)
  frontier_chart(summaries, os.path.join(out, "frontier.png"))
  print(f"wrote {out}/frontier.png")


def pool(dirs: list[str], out: str) -> None:
  """One table of runs on disjoint test images (the folds of one seed): every image's result
  from the run that held it out, means and CIs over all of them."""
  rows, runs, args = [], {}, []
  for d in dirs:
    rows += report.read_per_image(_finished(d, "--pool", "per_image.csv"))
    with open(_finished(d, "--pool", "summary.json")) as f:
      run = json.load(f)
    args.append(run["args"])
    for name, info in run["runs"].items():
      r = runs.setdefault(name, {"best_step": [], "steps": info["steps"], "wall_s": 0.0})
      r["best_step"].append(str(info["best_step"]))
      r["wall_s"] += info["wall_s"]
  if len({(a["seed"], a.get("split_seed"), a.get("folds")) for a in args}) > 1:
    raise SystemExit("--pool: the runs differ in --seed, --split-seed or --folds")
  for r in runs.values():
    r["best_step"] = "/".join(r["best_step"])
  summary = _write_pooled(rows, runs, out, "--pool")
  with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump({"args": {"seed": args[0]["seed"], "pooled": dirs}, "runs": runs,
               "summary": summary}, f, indent=2)
  frontier_chart({"": summary}, os.path.join(out, "frontier.png"))
  print(f"wrote {out}/table.md, summary.json, per_image.csv, frontier.png")


def frontier_chart(summaries: dict[str, list], path: str) -> None:
  """Per test domain, colourfulness (% of the truth's) against ΔE00 (% vs the same run's
  recipe) of every classification variant at each decoded T (a line per model and run: T is a
  decoding choice), beside each run's recipe and grey and issue 16's goal region (≥ 80%,
  ≤ +5%). `summaries`: {run label: report.summarize rows}."""
  from configs import vivid
  plt = report._plt()
  fig, axes = plt.subplots(1, len(DOMAINS), figsize=(5.6 * len(DOMAINS), 4.6))
  default_t = vivid.get_config().loss.temperature
  styles = ["-", "--", ":", "-."]
  for ax, domain in zip(axes, DOMAINS):
    ax.fill_between([80, 1000], -1000, 5, color="#519e3e", alpha=0.12,
                    label="goal (≥ 80%, ≤ +5%)")
    seen = []                                   # every plotted point, for the axis limits
    for k, (run, summary) in enumerate(summaries.items()):
      base = report.lookup(summary, "recipe", domain)

      def point(model):
        r = report.lookup(summary, model, domain)
        seen.append((100 * r["colorfulness_pred_mean"] / r["colorfulness_true_mean"],
                     100 * (r["delta_e_mean"] / base["delta_e_mean"] - 1)))
        return seen[-1]
      suffix = f" ({run})" if run else ""
      names = [r["model"] for r in summary if r["domain"] == domain and "@T=" not in r["model"]]
      for i, name in enumerate(names):
        decoded = {default_t: name, **{float(r["model"].split("@T=")[1]): r["model"]
                                       for r in summary if r["domain"] == domain
                                       and r["model"].startswith(f"{name}@T=")}}
        if len(decoded) < 2:
          continue
        temps = sorted(decoded)
        pts = [point(decoded[t]) for t in temps]
        line, = ax.plot(*zip(*pts), "o" + styles[k % 4], ms=4, color=f"C{i}", label=name + suffix)
        for t, xy in zip(temps, pts):
          ax.annotate(f"{t:g}", xy, xytext=(3, 3), textcoords="offset points", fontsize=7,
                      color=line.get_color())
      fill = "none" if k else "full"
      ax.plot(*point("recipe"), "s", color=report.COLORS["truth"], fillstyle=fill,
              label="recipe" + suffix)
      ax.plot(*point("gray"), "D", color=report.COLORS["gray"], fillstyle=fill,
              label="grey (ab = 0)" + suffix)
    xs, ys = zip(*seen)
    ax.set_xlim(-4, max(140, max(xs) + 10))
    ax.set_ylim(min(-10, min(ys) - 3), max(ys) + 5)
    ax.set_xlabel("colourfulness, % of the truth's")
    ax.set_ylabel("ΔE00, % vs the recipe (lower is better)")
    ax.set_title(f"test domain: {domain} (labels: annealed-mean T)", fontsize=10)
    ax.grid(alpha=0.3)
  axes[-1].legend(fontsize=7.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
  fig.tight_layout()
  fig.savefig(path, dpi=130)
  plt.close(fig)


def results_table(summary, names, runs) -> str:
  lines = ["| model | test domain | n | step kept | train s | colourfulness pred / truth | "
           "ΔE00 mean [95% CI] | ΔE00 vs recipe | grey ΔE00 | SSIM |",
           "|---|---|---|---|---|---|---|---|---|---|"]
  goals = []
  for domain in DOMAINS:
    grey = report.lookup(summary, "gray", domain)
    base = report.lookup(summary, "recipe", domain)
    for name in names:
      r = report.lookup(summary, name, domain)
      rel = r["colorfulness_pred_mean"] / r["colorfulness_true_mean"]
      vs = r["delta_e_mean"] / base["delta_e_mean"] - 1 if base else float("nan")
      lines.append(
          f"| {name} | {domain} | {r['n']} | {runs[name]['best_step']} of {runs[name]['steps']} | "
          f"{runs[name]['wall_s']:.0f} | "
          f"{r['colorfulness_pred_mean']:.1f} / {r['colorfulness_true_mean']:.1f} "
          f"({100 * rel:.0f}%) | {r['delta_e_mean']:.2f} [{r['delta_e_ci_low']:.2f}, "
          f"{r['delta_e_ci_high']:.2f}] | {100 * vs:+.1f}% | {grey['delta_e_mean']:.2f} | "
          f"{r['ssim_mean']:.4f} |")
      if name != "recipe" and base:
        goals.append(f"{name} on {domain}: colourfulness {100 * rel:.0f}% of truth "
                     f"({'met' if rel >= 0.8 else 'NOT met'}: goal ≥ 80%), ΔE00 {100 * vs:+.1f}% "
                     f"vs recipe ({'met' if vs <= 0.05 else 'NOT met'}: goal ≤ +5%)")
  return "\n".join(lines + [""] + [f"- {g}" for g in goals])


if __name__ == "__main__":
  main()
