"""The study's recipe vs vivid colour, trained side by side on real images for the same steps.

  nice python benchmarks/vivid.py [--steps 600] [--size 64] [--variants recipe,vivid] [--seed 0]
                                  [--val-every 50] [--crop-scale 1] [--video-every 0]
                                  [--data /work/shared/data]
                                  [--out runs/bench_vivid]

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
(`benchmarks/video_frames.py`).

Variants: `recipe` = configs/default.py's loss (L1 λ = 100 + GAN); `vivid` = the
classification head (rebalanced soft cross-entropy + GAN, no L1; configs/vivid.py's loss
options, annealed mean T = 0.6); `colorful`
= the recipe plus a colourfulness-gap term (λ_M = --colorfulness-weight); `vivid_l1` = vivid
plus L1 (λ = 10) on the annealed mean. `NAME:λ_M` adds the colourfulness-gap term with that
weight to any variant (e.g. `colorful:0.3`, `vivid_l1:0.1`). All are automatic models
(`config.model.hints = False`).

`--temperatures` also scores each classification model decoded at other annealed-mean
temperatures (no retraining: T is a decoding choice). Prints per variant × domain: colourfulness relative to the truth's, ΔE00 (mean, 95% bootstrap
CI) beside grey's (ab = 0) and the recipe's, SSIM; steps and training seconds. Writes
OUT/summary.json, OUT/per_image.csv, OUT/samples_<domain>.png (the same test images from every
variant) and OUT/table.md.
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

import numpy as np  # noqa: E402

from benchmarks import select_train, video_frames  # noqa: E402
from colorjax import ab_bins, config_lib, evaluate, report, study  # noqa: E402

DOMAINS = {"animation": "cartoon", "photos": "movie"}   # shared-data folder → config domain


def split_by_group(data: str, test_fraction: float, seed: int,
                   val_fraction: float = 0.0) -> dict[str, dict[str, list]]:
  """{folder: {"train", "val", "test": records, "test_groups"}}, whole groups held out per
  folder: test groups first, then validation groups, from one seeded order (so the test set
  does not depend on `val_fraction`)."""
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
    total, test, val, test_groups, val_groups = sum(map(len, by_group.values())), [], [], [], []
    for name in order:                  # whole groups until each share is reached
      if len(test) < test_fraction * total:
        test += by_group[name]
        test_groups.append(name)
      elif len(val) < val_fraction * total:
        val += by_group[name]
        val_groups.append(name)
    train_records = [r for n in names if n not in test_groups + val_groups for r in by_group[n]]
    out[folder] = {"train": sorted(train_records), "val": sorted(val), "test": sorted(test),
                   "test_groups": sorted(test_groups)}
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
  if name in ("vivid", "vivid_l1"):
    config.loss = vivid.get_config().loss
    config.loss.kind = "classification"
    config.loss.l1_weight = 10.0 if name == "vivid_l1" else 0.0
    config.loss.colorfulness_weight = 0.0
  elif name == "colorful":
    config.loss.colorfulness_weight = colorfulness_weight
  elif name != "recipe":
    raise SystemExit(f"--variants: unknown variant {name!r} (recipe, vivid, colorful, vivid_l1)")
  if weight:
    try:
      config.loss.colorfulness_weight = float(weight)
    except ValueError:
      raise SystemExit(f"--variants: {spec!r}: expected NAME[:colourfulness weight]") from None
  config.name = spec
  return config_lib.finalize(config)


def train_variant(config, train_records: list[list], val_records: list, steps: int,
                  val_every: int):
  """(G variables, info) after `steps` GAN steps, of the best validation step if `val_every`."""
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
  return {"params": state.g.params, "batch_stats": state.g.batch_stats}, info


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
  p.add_argument("--data", default="/work/shared/data")
  p.add_argument("--out", default="runs/bench_vivid")
  args = p.parse_args()
  if not os.path.exists(os.path.join(args.data, "manifest.csv")):
    raise SystemExit(f"--data={args.data}: no manifest.csv (the shared real images)")
  os.makedirs(args.out, exist_ok=True)
  if not 0 < args.crop_scale <= 1:
    raise SystemExit(f"--crop-scale={args.crop_scale}: must be in (0, 1]")
  split = split_by_group(args.data, args.test_fraction, args.split_seed,
                         args.val_fraction if args.val_every else 0.0)
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
    variables, info = train_variant(config, train_records, val_records, args.steps,
                                    args.val_every)
    runs[name] = info
    kept = (f", best validation L1 {info['best_val_l1']:.4f} at step {info['best_step']}"
            if args.val_every else "")
    print(f"  {name}: {info['wall_s']:.0f} s{kept}", flush=True)
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
