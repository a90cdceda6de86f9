"""Colour hints on real images: the automatic recipe model vs the hint model, by number of hints.

  nice .venv/bin/python benchmarks/hints.py --steps 1200               # trains both, then evaluates
  nice .venv/bin/python benchmarks/hints.py --steps 1200 --out runs/bench_hints   # reuses the runs

Trains two models of the same small CPU-sized architecture (configs/demo.py widths: ResNet18
encoder at width 16, decoder 64-32-16-16-8) at 128 px, batch 16, for the same fixed number of
steps (the first quarter L1-only, as the demo's warm-up), on the Kodak photos and Sintel frames
of `../shared/data` (drawn evenly; `--video_every N` adds every N-th frame of its three video
clips, `benchmarks/video_frames.py`: at N = 8, 116 animation frames of *Big Buck Bunny* and
*Caminandes* and 30 live-action frames of *Tears of Steel*): `automatic`
(config.model.hints=False, the recipe) and
`hints` (config.model.hints=True, trained with simulated hints). Held out, never trained on:
every 4th Kodak image (kodim04, 08, ...) and every Sintel frame of every 3rd shot group (sorted
by name, from the 2nd), split by group as the data README asks; a validation set (kodim02, 10,
18 and Sintel groups 0, 6, 12, ...) is scored every `--val_every` steps and each model's best
step is kept, as the recipe selects its best epoch (by mean L1, the hint model's given
simulated hints as in training, `train.validation_loss`; or `--select_by delta_e`: mean ΔE00 in
automatic mode). Then, on centre crops of the
held-out images (`--eval_size`), for 0, 1, 2, 5, 10, 20 hints sampled from the truth (the same
points for every method), prints ΔE00 and PSNR of: propagation alone (grey prior), each model
alone, and each model with propagation (the model's prediction as the prior). Training is
bounded by steps; the wall time is printed. A finished run in `--out` is reused.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from colorjax import xla_flags  # noqa: E402

xla_flags.apply()             # as launch.py does, before JAX starts

from benchmarks import select_train, video_frames  # noqa: E402
from colorjax import checkpoints, config_lib, evaluate  # noqa: E402

PROP = evaluate.PROPAGATION


def split(data_dir: str) -> tuple[dict, dict, dict]:
  """({domain: train records}, {domain: validation records}, {domain: held-out records}) from
  the data's manifest, by group: Sintel shot groups 1, 4, 7, ... (sorted by name) held out and
  groups 0, 6, 12, ... for validation; Kodak (one manifest group of 24 unrelated scenes) by
  number: every 4th photo held out (kodim04, 08, ...), kodim02, 10, 18 for validation."""
  rows = list(csv.DictReader(open(os.path.join(data_dir, "manifest.csv"))))
  sets = {k: {"animation": [], "photos": []} for k in ("train", "val", "test")}
  groups = sorted({r["group"] for r in rows if r["folder"] == "animation"})
  held_groups, val_groups = set(groups[1::3]), set(groups[0::6])
  for r in sorted(rows, key=lambda r: r["file"]):
    if r["folder"] not in sets["train"]:
      continue
    record = ("file", os.path.join(data_dir, r["folder"], r["file"]))
    if r["folder"] == "photos":
      number = int(r["file"][len("kodim"):len("kodim") + 2])
      part = "test" if number % 4 == 0 else "val" if number % 8 == 2 else "train"
    else:
      part = ("test" if r["group"] in held_groups else
              "val" if r["group"] in val_groups else "train")
    sets[part][r["folder"]].append(record)
  return sets["train"], sets["val"], sets["test"]


def make_config(hints: bool, size: int, batch: int, seed: int, crop_scale: float = 1.0):
  from configs import demo
  config = demo.get_config()
  config.name = "bench_hints" if hints else "bench_automatic"
  config.image_size = size
  config.batch_size = batch
  config.seed = seed
  config.model.hints = hints
  config.data.crop_scale = crop_scale
  return config_lib.finalize(config)


def train_model(config, records: dict, val_records: list, steps: int, run_dir: str,
                l1_only: float = 0.25, val_every: int = 25, video_every: int = 0,
                select_by: str = "l1") -> dict:
  """Train `steps` steps (the first `l1_only` fraction L1-only, as the recipe's warm-up, then
  GAN + L1) with the project's Trainer and pipeline, scoring the validation images every
  `val_every` steps (`train.validation_loss`, the recipe's model selection); writes the
  checkpoint of the best-scoring step. Returns {"steps", "seconds", "best_step", ...} (reused
  if already done; `video_every` only enters the reuse key: `records` already hold the frames;
  `val_hints`: whether the validation L1 gave a hint model hints, as it has since 2026-12-01)."""
  info_path = os.path.join(run_dir, "bench_train.json")
  val_hints = bool(config.model.hints) and select_by == "l1"
  if os.path.exists(info_path):
    with open(info_path) as f:
      info = json.load(f)
    done = (info["steps"], info.get("l1_only"), info.get("val_every"), info.get("crop_scale", 1.0),
            info.get("video_every", 0), info.get("select_by", "l1"), info.get("val_hints", False))
    if done == (steps, l1_only, val_every, config.data.crop_scale, video_every, select_by,
                val_hints):
      print(f"{config.name}: reusing {run_dir} ({steps} steps, {info['seconds']:.0f} s)", flush=True)
      return info
  os.makedirs(run_dir, exist_ok=True)
  state, data_state, info = select_train.train_best(
      config, list(records.values()), val_records, steps, l1_only=l1_only, val_every=val_every,
      select_by=select_by)
  mngr = checkpoints.manager(run_dir)
  checkpoints.save(mngr, info["best_step"], state, data_state,
                   config.to_json_best_effort(sort_keys=True), None)
  mngr.close()
  info.update(l1_only=l1_only, val_every=val_every, crop_scale=config.data.crop_scale,
              video_every=video_every, select_by=select_by, val_hints=val_hints,
              batch=config.batch_size, image_size=config.image_size,
              train_images={k: len(v) for k, v in records.items()})
  with open(info_path, "w") as f:
    json.dump(info, f, indent=2)
  return info


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data"))
  parser.add_argument("--out", default=os.path.join(ROOT, "runs", "bench_hints"))
  parser.add_argument("--steps", type=int, default=1200)
  parser.add_argument("--size", type=int, default=128)
  parser.add_argument("--batch", type=int, default=16)
  parser.add_argument("--eval_size", type=int, default=128)
  parser.add_argument("--counts", default="0,1,2,5,10,20")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--l1_only", type=float, default=0.25,
                      help="fraction of the steps trained on L1 alone (the recipe's warm-up); "
                           "1 = no GAN phase (one compiled step: the cheapest on a busy CPU)")
  parser.add_argument("--val_every", type=int, default=25,
                      help="steps between validation scores; the best step's model is kept")
  parser.add_argument("--crop_scale", type=float, default=1.0,
                      help="training crops: side in [crop_scale, 1] × the short side, at random "
                           "(config.data.crop_scale; 1 = the recipe's crops)")
  parser.add_argument("--video_every", type=int, default=0,
                      help=video_frames.HELP)
  parser.add_argument("--select_by", choices=("l1", "delta_e"), default="l1",
                      help="the validation score that picks each model's step: mean L1 (the "
                           "recipe's validation loss) or mean ΔE00")
  parser.add_argument("--train_only", action="store_true")
  parser.add_argument("--models", default="automatic,hints",
                      help="train only these (e.g. one per process); evaluation needs both")
  args = parser.parse_args()
  if not os.path.exists(os.path.join(args.data, "manifest.csv")):
    sys.exit(f"error: --data={args.data}: no manifest.csv (see /work/shared/data/README.md)")
  train_records, val_records, test_records = split(args.data)
  for domain, frames in video_frames.training_frames(args.data, args.video_every).items():
    train_records[domain] = train_records[domain] + frames
  print(", ".join(f"{name}: " + " + ".join(f"{k} {len(v)}" for k, v in recs.items())
                  for name, recs in (("train", train_records), ("validation", val_records),
                                     ("held out", test_records))), flush=True)
  val_list = [r for recs in val_records.values() for r in recs]
  runs = {}
  for name, hints in (("automatic", False), ("hints", True)):
    if name not in args.models.split(","):
      continue
    config = make_config(hints, args.size, args.batch, args.seed, args.crop_scale)
    run_dir = os.path.join(args.out, name)
    runs[name] = (run_dir, train_model(config, train_records, val_list, args.steps, run_dir,
                                       args.l1_only, args.val_every, args.video_every,
                                       args.select_by))
  for name, (_, info) in runs.items():
    print(f"{name}: {info['steps']} steps ({info['l1_only']:.0%} L1-only) of batch {info['batch']} "
          f"at {info['image_size']} px in "
          f"{info['seconds']:.0f} s ({info['steps'] * info['batch'] / info['seconds']:.1f} img/s); "
          f"best validation {info.get('select_by', 'l1')} {info['best_val_l1']:.4f} at step "
          f"{info['best_step']}")
  if args.train_only:
    return
  counts = [int(c) for c in args.counts.split(",")]
  predictors = {}
  for name, (run_dir, _) in runs.items():
    config, variables, _ = checkpoints.restore_generator(run_dir)
    predictors[name] = (evaluate.generator_predictor(config, variables), bool(config.model.hints))
  t0 = time.time()
  table = evaluate.hint_curves(predictors, test_records, counts, args.eval_size, seed=args.seed)
  table["train"] = {name: info for name, (_, info) in runs.items()}
  with open(os.path.join(args.out, "hints_eval.json"), "w") as f:
    json.dump(table, f, indent=2)
  print(f"held-out centre crops of {args.eval_size} px, hints sampled from the truth "
        f"(seed {args.seed}; {time.time() - t0:.0f} s):")
  print(evaluate.format_hint_table(table))
  print(goals(table))
  picture = os.path.join(args.out, "hints_example.png")
  hint_picture(predictors, test_records, 5, args.eval_size, picture, seed=args.seed)
  print(f"wrote {os.path.join(args.out, 'hints_eval.json')} and {picture}")


def goals(table: dict) -> str:
  """Issue 17's goals on this table, over all held-out images (image-weighted domain means)."""
  def mean(method, n, k):
    cells = table["methods"][method].values()
    total = sum(c[str(n)]["n"] for c in cells)
    return sum(c[str(n)][k] * c[str(n)]["n"] for c in cells) / max(total, 1)
  lines = ["goals (all held-out images):"]
  if 10 in table["counts"] and 0 in table["counts"]:
    for name in ("automatic", "hints"):
      m = f"{name}+propagation"
      dp = mean(m, 10, "psnr") - mean(m, 0, "psnr")
      de = 1 - mean(m, 10, "delta_e") / mean(m, 0, "delta_e")
      lines.append(f"  {m}: 10 hints vs 0: {dp:+.2f} dB PSNR (goal +4), ΔE00 {-100 * de:+.1f}% "
                   f"(goal -30%): {'met' if dp >= 4 and de >= 0.3 else 'NOT met'}")
  for name in ("automatic", "hints"):
    m = f"{name}+propagation"
    worse = [n for n in table["counts"]
             if mean(m, n, "delta_e") > min(mean(PROP, n, "delta_e"), mean(name, n, "delta_e"))]
    lines.append(f"  {m} at least as good (ΔE00) as propagation alone and as the model alone: "
                 + ("met at every count" if not worse else f"NOT met at {worse}"))
  if 0 in table["counts"]:
    a, h = mean("automatic", 0, "delta_e"), mean("hints", 0, "delta_e")
    lines.append(f"  hint model at 0 hints: ΔE00 {h:.2f} vs automatic {a:.2f} "
                 f"({100 * (h / a - 1):+.1f}%, goal <= +5%): {'met' if h <= 1.05 * a else 'NOT met'}")
  return "\n".join(lines)


def hint_picture(predictors: dict, test_records: dict, n: int, size: int, path: str,
                 seed: int = 0) -> None:
  """grey input | automatic | hint model + propagation with `n` hints (marked) | truth, for
  the first held-out image of each domain (one row each)."""
  import jax.numpy as jnp
  from PIL import Image, ImageDraw
  from colorjax import color, hints as hints_lib
  from colorjax.data import decode
  rows = []
  for di, (domain, records) in enumerate(test_records.items()):
    ex = decode.load_example(records[0], size, None)
    L, ab = ex["L"][None], ex["ab"][None]
    hint_ab, mask = evaluate.hint_points(ex["ab"], n, seed, di, 0)
    auto = np.asarray(predictors["automatic"][0](jnp.asarray(L)))
    h = hints_lib.model_hint_input(hint_ab, mask)[None]
    guided = np.asarray(predictors["hints"][0](jnp.asarray(L), jnp.asarray(h)))
    guided = evaluate._propagate_all(np.asarray(color.denormalize_l(L[..., 0])),
                                     [(hint_ab, mask)], guided)
    to_img = lambda a: Image.fromarray((np.clip(np.asarray(
        color.model_outputs_to_rgb(jnp.asarray(L), jnp.asarray(a)))[0], 0, 1) * 255).astype(np.uint8))
    panels = [to_img(np.zeros_like(ab)), to_img(auto), to_img(guided), to_img(ab)]
    draw = ImageDraw.Draw(panels[2])
    rng = np.random.default_rng((seed, di, 0))
    pts = hints_lib.sample_from_truth(color.denormalize_ab(ex["ab"]), n, rng).xy
    for x, y in pts:
      draw.ellipse((x - 4, y - 4, x + 4, y + 4), outline=(255, 255, 255), width=2)
      draw.ellipse((x - 6, y - 6, x + 6, y + 6), outline=(0, 0, 0), width=1)
    row = Image.new("RGB", (4 * size + 6, size), (255, 255, 255))
    for i, p in enumerate(panels):
      row.paste(p, (i * (size + 2), 0))
    rows.append(row)
  out = Image.new("RGB", (rows[0].width, len(rows) * (size + 2) - 2), (255, 255, 255))
  for i, r in enumerate(rows):
    out.paste(r, (0, i * (size + 2)))
  out.save(path)


if __name__ == "__main__":
  main()
