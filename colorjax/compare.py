"""Two studies side by side (e.g. the recipe's and vivid colour's), from their saved reports.

  python launch.py --mode=study --config=configs/default.py ... --workdir=runs/study
  python launch.py --mode=study --config=configs/vivid.py ... --workdir=runs/study_vivid
  python -m colorjax.compare runs/study runs/study_vivid [--labels recipe,vivid] [--out DIR]

Reads each study's `report/per_image.csv` and `report/summary.json` (nothing is retrained or
re-evaluated), names the models `<label>/<model>` and writes to `--out` (default
`<second study>/compare`): `compare.md` (the study's table for every model × domain, ΔE00,
SSIM, PSNR and colourfulness with 95% bootstrap CIs, the paired differences and the trade-off
sentences), `summary.csv`, and the study's bar charts (ΔE00, SSIM, colourfulness) for both.
The paired differences (second − first, same model name, same test images) get a 95%
bootstrap CI over images.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Mapping, Sequence

import numpy as np

from colorjax import report

STUDY_MODELS = ("cartoon", "movie", "mixed")


class CompareError(ValueError):
  """A study directory without a usable report."""


def load_study(path: str, label: str) -> tuple[list[dict], dict]:
  """(per-image rows with models renamed `label/model`, {renamed model: trained-on domains})."""
  rows_path = os.path.join(path, "report", "per_image.csv")
  if not os.path.exists(rows_path):
    raise CompareError(f"{path}: no report/per_image.csv (run --mode=study with this --workdir "
                       "first)")
  rows = report.read_per_image(rows_path)
  trained_on = {}
  try:
    with open(os.path.join(path, "report", "summary.json")) as f:
      models = json.load(f)["setup"]["models"]
    trained_on = {f"{label}/{m}": info["domains"] for m, info in models.items()}
  except (OSError, ValueError, KeyError):
    pass
  for r in rows:
    if r["model"] in STUDY_MODELS:
      r["model"] = f"{label}/{r['model']}"
  return rows, trained_on


def paired(rows: Sequence[Mapping], a: str, b: str, domain: str, metric: str) -> dict | None:
  """Per-image b − a of `metric` on the images both models were scored on: mean and CI."""
  va = {r["image"]: r[metric] for r in rows if r["model"] == a and r["domain"] == domain}
  vb = {r["image"]: r[metric] for r in rows if r["model"] == b and r["domain"] == domain}
  common = sorted(set(va) & set(vb))
  if not common:
    return None
  d = np.array([vb[i] - va[i] for i in common])
  lo, hi = report.bootstrap_ci(d)
  return {"n": len(common), "mean": float(d.mean()), "ci_low": lo, "ci_high": hi}


def tradeoff(summary, rows, labels: Sequence[str], domains: Sequence[str]) -> list[str]:
  """Sentences computed from the numbers: colourfulness gained vs ΔE00 paid, per model × domain."""
  first, second = labels
  out = []
  for domain in domains:
    for m in STUDY_MODELS:
      a, b = f"{first}/{m}", f"{second}/{m}"
      ra, rb = report.lookup(summary, a, domain), report.lookup(summary, b, domain)
      de = paired(rows, a, b, domain, "delta_e")
      if ra is None or rb is None or de is None:
        continue
      true = ra["colorfulness_true_mean"]
      ca, cb = (100 * r["colorfulness_pred_mean"] / true if true else float("nan") for r in (ra, rb))
      sign = "no clear difference" if de["ci_low"] <= 0 <= de["ci_high"] else (
          "worse" if de["mean"] > 0 else "better")
      out.append(
          f"{domain}, {m} model: {second} reaches {cb:.0f}% of the truth's colourfulness "
          f"({first}: {ca:.0f}%) at ΔE00 {rb['delta_e_mean']:.2f} vs {ra['delta_e_mean']:.2f} "
          f"({100 * (rb['delta_e_mean'] / ra['delta_e_mean'] - 1):+.1f}%; paired difference "
          f"{de['mean']:+.2f} [{de['ci_low']:+.2f}, {de['ci_high']:+.2f}] over {de['n']} images: "
          f"{sign}).")
  pairs = [(paired(rows, f"{first}/{m}", f"{second}/{m}", d, "delta_e"),
            paired(rows, f"{first}/{m}", f"{second}/{m}", d, "colorfulness_pred"))
           for d in domains for m in STUDY_MODELS]
  pairs = [(de, col) for de, col in pairs if de is not None]
  if pairs:
    more = sum(col["ci_low"] > 0 for _, col in pairs)
    worse = sum(de["ci_low"] > 0 for de, _ in pairs)
    better = sum(de["ci_high"] < 0 for de, _ in pairs)
    out.insert(0, (
        f"Trade-off over {len(pairs)} model × test-domain pairs (paired 95% bootstrap CIs over "
        f"the same test images): {second} is more colourful than {first} in {more} (mean "
        f"{np.mean([c['mean'] for _, c in pairs]):+.1f} M), its ΔE00 is higher in {worse}, lower "
        f"in {better} and not clearly different in {len(pairs) - worse - better} (mean "
        f"{np.mean([d['mean'] for d, _ in pairs]):+.2f})."))
  return out


def compare(dirs: Sequence[str], labels: Sequence[str], out: str) -> str:
  """Write the side-by-side report of two studies into `out`; returns compare.md's path."""
  if len(dirs) != 2 or len(labels) != 2:
    raise CompareError("give exactly two study directories (and two --labels)")
  rows, trained_on = [], {}
  for i, (d, label) in enumerate(zip(dirs, labels)):
    r, t = load_study(d, label)
    rows += [x for x in r if i == 0 or x["model"] not in report.BASELINES]  # baselines once
    trained_on.update(t)
  domains = list(dict.fromkeys(r["domain"] for r in rows))
  order = [f"{l}/{m}" for m in STUDY_MODELS for l in labels] + list(report.BASELINES)
  order = [m for m in order if any(r["model"] == m for r in rows)]
  summary = report.summarize(rows, order, domains)
  os.makedirs(out, exist_ok=True)
  report.write_csv(os.path.join(out, "summary.csv"), summary, report.summary_fields())
  figures = {}
  for metric, title in (("delta_e", "Colour error (ΔE00)"), ("ssim", "SSIM")):
    report.bar_chart(summary, metric, order, domains, trained_on,
                     os.path.join(out, f"{metric}.png"), f"{title}: mean and 95% bootstrap CI")
    figures[title] = f"{metric}.png"
  models = [m for m in order if m not in report.BASELINES]
  report.colorfulness_chart(summary, models, domains, trained_on,
                            os.path.join(out, "colorfulness.png"))
  figures["Colourfulness: predictions vs ground truth"] = "colorfulness.png"
  sentences = tradeoff(summary, rows, labels, domains)
  parts = [f"# {labels[0]} vs {labels[1]}: {dirs[0]} and {dirs[1]}", "",
           "## Trade-off", "", *[f"- {s}" for s in sentences], "",
           "## Results (95% bootstrap CIs over test images)", "", report.summary_table(summary),
           "", "## Figures", ""]
  parts += [f"### {t}\n\n![{t}]({f})\n" for t, f in figures.items()]
  path = os.path.join(out, "compare.md")
  with open(path, "w") as f:
    f.write("\n".join(parts))
  for s in sentences:
    print(s)
  print(f"wrote {path}")
  return path


def main(argv: Sequence[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m colorjax.compare", description=__doc__.splitlines()[0])
  p.add_argument("studies", nargs=2, help="two study workdirs (from --mode=study)")
  p.add_argument("--labels", default="recipe,vivid", help="names for the two studies")
  p.add_argument("--out", default=None, help="output folder (default: SECOND/compare)")
  args = p.parse_args(argv)
  labels = [s.strip() for s in args.labels.split(",")]
  try:
    if args.out and os.path.exists(args.out) and not os.path.isdir(args.out):
      raise CompareError(f"--out={args.out}: exists and is not a directory")
    if len(labels) != 2 or len(set(labels)) != 2 or not all(labels):
      raise CompareError(f"--labels={args.labels}: expected two different names, e.g. recipe,vivid")
    compare(args.studies, labels, args.out or os.path.join(args.studies[1], "compare"))
  except CompareError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
