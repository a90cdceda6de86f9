"""The study report: summary statistics, tables, figures and `report.md` from per-image rows.

Everything here is a pure function of the numbers it is given (per-image metric rows, loss
histories, a few sample images, the setup), so a report can be rebuilt without retraining.
Sentences in the report are computed from the numbers; none is written in advance.

Metric units: ΔE00 (CIEDE2000 colour difference, ≥ 0, lower is better), SSIM ([-1, 1], higher
is better), PSNR (dB, higher is better), colourfulness (Hasler–Süsstrunk M, ≥ 0; closer to the
ground truth's is better).
"""
from __future__ import annotations

import csv
import math
import os
from typing import Iterable, Mapping, Sequence

import numpy as np

METRICS = ("delta_e", "ssim", "psnr", "colorfulness_pred", "colorfulness_true")
ROW_FIELDS = ("model", "domain", "image", *METRICS)
STATS = ("mean", "median", "ci_low", "ci_high")
BASELINES = ("gray", "mean_ab")
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
CI_LEVEL = 0.95

LABELS = {"delta_e": "ΔE00 (lower is better)", "ssim": "SSIM (higher is better)",
          "psnr": "PSNR, dB (higher is better)"}
BASELINE_TEXT = {"gray": "gray baseline (ab = 0)", "mean_ab": "mean_ab baseline (training mean ab)"}
COLORS = {"cartoon": "#e07b39", "movie": "#3b75af", "mixed": "#519e3e", "gray": "#9a9a9a",
          "mean_ab": "#cfcfcf", "truth": "#333333"}


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------


def _finish(fig, ax, path: str) -> None:
  """Shared look of the bar charts: light y grid, legend outside on the right; save and close."""
  ax.grid(axis="y", alpha=0.3)
  ax.set_axisbelow(True)
  ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
  fig.tight_layout()
  fig.savefig(path, dpi=130)
  _plt().close(fig)

def bootstrap_ci(values: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = BOOTSTRAP_SEED, level: float = CI_LEVEL) -> tuple[float, float]:
  """Percentile bootstrap confidence interval of the mean of `values` (seeded, reproducible).

  Returns (nan, nan) for an empty sample and (v, v) for a single value.
  """
  x = np.asarray(values, np.float64)
  if x.size == 0:
    return float("nan"), float("nan")
  idx = np.random.default_rng(seed).integers(0, x.size, size=(resamples, x.size))
  means = x[idx].mean(axis=1)
  alpha = (1.0 - level) / 2.0
  lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
  return float(lo), float(hi)


def summarize(rows: Iterable[Mapping], models: Sequence[str] | None = None,
              domains: Sequence[str] | None = None) -> list[dict]:
  """Per (model, domain): n and, for every metric, mean, median and a 95% bootstrap CI.

  Rows are ordered by `models` then `domains` (default: first appearance). Keys of each
  summary row: model, domain, n, and `<metric>_<stat>` for stat in mean/median/ci_low/ci_high.
  """
  groups: dict[tuple[str, str], dict[str, list[float]]] = {}
  for r in rows:
    g = groups.setdefault((r["model"], r["domain"]), {m: [] for m in METRICS})
    for m in METRICS:
      g[m].append(float(r[m]))
  models = models or list(dict.fromkeys(k[0] for k in groups))
  domains = domains or list(dict.fromkeys(k[1] for k in groups))
  out = []
  for model in models:
    for domain in domains:
      if (model, domain) not in groups:
        continue
      values = groups[(model, domain)]
      row = {"model": model, "domain": domain, "n": len(values["delta_e"])}
      for m in METRICS:
        x = np.asarray(values[m], np.float64)
        lo, hi = bootstrap_ci(x)
        row.update({f"{m}_mean": float(x.mean()) if x.size else float("nan"),
                    f"{m}_median": float(np.median(x)) if x.size else float("nan"),
                    f"{m}_ci_low": lo, f"{m}_ci_high": hi})
      out.append(row)
  return out


def summary_fields() -> list[str]:
  return ["model", "domain", "n", *(f"{m}_{s}" for m in METRICS for s in STATS)]


def lookup(summary: Sequence[Mapping], model: str, domain: str) -> Mapping | None:
  for row in summary:
    if row["model"] == model and row["domain"] == domain:
      return row
  return None


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------

def write_csv(path: str, rows: Sequence[Mapping], fields: Sequence[str]) -> None:
  """CSV with floats written by repr (exact round trip)."""
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(fields), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)


def read_per_image(path: str) -> list[dict]:
  """per_image.csv → rows with float metrics."""
  with open(path, newline="") as f:
    return [{**r, **{m: float(r[m]) for m in METRICS}} for r in csv.DictReader(f)]


# ---------------------------------------------------------------------------------------------
# Figures (matplotlib, Agg backend)
# ---------------------------------------------------------------------------------------------

def _plt():
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def model_label(model: str, trained_on: Mapping[str, Sequence[str]]) -> str:
  if model in trained_on:
    return f"{model} model (trained on {' + '.join(trained_on[model])})"
  return BASELINE_TEXT.get(model, model)


def bar_chart(summary: Sequence[Mapping], metric: str, models: Sequence[str],
              domains: Sequence[str], trained_on: Mapping[str, Sequence[str]], path: str,
              title: str) -> None:
  """Grouped bars: one group per test domain, one bar per model, 95% CI whiskers, values."""
  plt = _plt()
  fig, ax = plt.subplots(figsize=(3.5 + 0.8 * len(models) * len(domains), 4.6))
  width = 0.8 / len(models)
  for j, model in enumerate(models):
    xs, means, err = [], [], [[], []]
    for i, domain in enumerate(domains):
      row = lookup(summary, model, domain)
      if row is None:
        continue
      mean = row[f"{metric}_mean"]
      xs.append(i + (j - (len(models) - 1) / 2) * width)
      means.append(mean)
      err[0].append(max(mean - row[f"{metric}_ci_low"], 0.0))
      err[1].append(max(row[f"{metric}_ci_high"] - mean, 0.0))
    bars = ax.bar(xs, means, width * 0.92, yerr=err, capsize=3, color=COLORS.get(model, None),
                  edgecolor="black", linewidth=0.6, hatch="//" if model in BASELINES else None,
                  label=model_label(model, trained_on), error_kw={"linewidth": 1})
    for b, v, hi in zip(bars, means, err[1]):
      ax.annotate(_fmt(metric, v), (b.get_x() + b.get_width() / 2, v + hi), xytext=(0, 2),
                  textcoords="offset points", ha="center", va="bottom", fontsize=7.5)
  ax.set_xticks(range(len(domains)))
  ax.set_xticklabels([f"test domain: {d}\n(n = {_n(summary, d)} images)" for d in domains])
  ax.set_title(title, fontsize=11)
  shown = [r for r in summary if r["model"] in models and r["domain"] in domains]
  ymax = max((r[f"{metric}_ci_high"] for r in shown), default=1.0)
  ymin = min((r[f"{metric}_ci_low"] for r in shown), default=0.0)
  ymax = ymax if math.isfinite(ymax) and ymax > 0 else 1.0
  # Values bunched far from 0 (SSIM ≈ 0.9) are unreadable on a full axis: zoom, and say so.
  low = max(0.0, ymin - 0.3 * (ymax - ymin)) if ymin > 0.5 * ymax else 0.0
  ax.set_ylim(low, ymax + 0.12 * (ymax - low))
  ax.set_ylabel(LABELS.get(metric, metric) + (f"\naxis starts at {low:.2f}, not 0" if low else ""))
  _finish(fig, ax, path)


def _n(summary, domain) -> int:
  return max((r["n"] for r in summary if r["domain"] == domain), default=0)


def _fmt(metric: str, v: float) -> str:
  return f"{v:.3f}" if metric == "ssim" else f"{v:.2f}" if metric == "delta_e" else f"{v:.1f}"


def epoch_records(history: Sequence[Mapping]) -> list[dict]:
  """The 'epoch' records of a metrics.jsonl history, one per epoch (the last if repeated)."""
  by_epoch = {int(r["epoch"]): dict(r) for r in history if r.get("type") == "epoch"}
  return [by_epoch[e] for e in sorted(by_epoch)]


def loss_curves(histories: Mapping[str, Sequence[Mapping]], selected: Mapping[str, Mapping],
                trained_on: Mapping[str, Sequence[str]], path: str) -> None:
  """Training L1 and validation L1 per epoch, one panel per model, selected epoch starred."""
  plt = _plt()
  models = list(histories)
  fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 4.0), sharey=True,
                           squeeze=False)
  handles = {}
  for ax, model in zip(axes[0], models):
    recs = epoch_records(histories[model])
    epochs = [r["epoch"] for r in recs]
    warm = [r["epoch"] for r in recs if r.get("warmup")]
    if warm:
      handles["warm"] = ax.axvspan(min(epochs) - 0.5, max(warm) + 0.5, color="0.92", zorder=0,
                                   label="L1-only warm-up epochs")
    handles[model] = ax.plot(epochs, [r["train_l1"] for r in recs], "o-", color=COLORS.get(model),
                             label=f"training L1, {model} (epoch mean)")[0]
    handles["val"] = ax.plot(epochs, [r["val_loss"] for r in recs], "s--", color="black",
                             label="validation L1")[0]
    sel = selected.get(model, {})
    title = model_label(model, trained_on)
    if sel.get("epoch") is not None and sel.get("val_loss") is not None:
      ax.axvline(sel["epoch"], color="crimson", linestyle=":", linewidth=1.2)
      handles["sel"] = ax.plot([sel["epoch"]], [sel["val_loss"]], marker="*", markersize=15,
                               color="crimson", linestyle="none",
                               label="selected checkpoint (lowest validation L1)")[0]
      title += f"\nselected: epoch {sel['epoch']} (val. L1 {sel['val_loss']:.4f})"
    ax.set_title(title, fontsize=9.5)
    ax.set_xlabel("epoch")
    ax.set_xticks(epochs)
    ax.grid(alpha=0.3)
  axes[0][0].set_ylabel("L1 on normalised ab (lower is better)")
  order = ["warm", *models, "val", "sel"]
  hs = [handles[k] for k in order if k in handles]
  fig.legend(hs, [h.get_label() for h in hs], loc="lower center", ncol=min(len(hs), 3),
             fontsize=8, frameon=False)
  fig.suptitle("Training and validation loss per model", fontsize=11)
  fig.tight_layout(rect=(0, 0.13, 1, 1))
  fig.savefig(path, dpi=130)
  plt.close(fig)


def sample_grid(samples: Sequence[Mapping], models: Sequence[str], domain: str,
                trained_on: Mapping[str, Sequence[str]], path: str) -> None:
  """Rows = test images; columns = grey input, each model's output (with its ΔE00), truth.

  Each sample: {"image": name, "grey": rgb, "truth": rgb, "pred": {model: rgb},
  "delta_e": {model: float}} with RGB float arrays in [0, 1].
  """
  plt = _plt()
  cols = ["grey input", *models, "ground truth"]
  size = 1.9
  fig, axes = plt.subplots(len(samples), len(cols), figsize=(size * len(cols), size * len(samples) + 0.6),
                           squeeze=False)
  for i, s in enumerate(samples):
    images = [s["grey"], *(s["pred"][m] for m in models), s["truth"]]
    for j, (ax, img) in enumerate(zip(axes[i], images)):
      ax.imshow(np.clip(img, 0, 1), interpolation="nearest")
      ax.set_xticks([])
      ax.set_yticks([])
      if i == 0:
        title = cols[j] if cols[j] in ("grey input", "ground truth") else \
            f"{cols[j]}\n(trained on {'+'.join(trained_on.get(cols[j], ['?']))})"
        ax.set_title(title, fontsize=8.5)
      model = cols[j]
      if model in s.get("delta_e", {}):
        note = " (= gray baseline)" if model == "grey input" else ""
        ax.set_xlabel(f"ΔE00 {s['delta_e'][model]:.2f}{note}", fontsize=8)
    axes[i][0].set_ylabel(short_name(s["image"]), fontsize=8)
  fig.suptitle(f"Test images from '{domain}' (first {len(samples)} by index)", fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=130)
  plt.close(fig)


def epoch_samples_grid(samples: Mapping, model: str, first_epoch: int, selected_epoch,
                       path: str) -> None:
  """The paper's Figure 3 for one model: rows = validation images; columns = grey input, the
  prediction after the first epoch, the prediction of the selected checkpoint, the truth.

  `samples`: {"image": [names], "grey", "first", "selected", "truth": RGB float [k,H,W,3]}.
  """
  plt = _plt()
  cols = [("grey input", "grey"), (f"epoch {first_epoch}", "first"),
          (f"selected (epoch {selected_epoch})", "selected"), ("ground truth", "truth")]
  size = 1.9
  k = len(samples["image"])
  fig, axes = plt.subplots(k, len(cols), figsize=(size * len(cols), size * k + 0.6), squeeze=False)
  for i in range(k):
    for j, (title, key) in enumerate(cols):
      ax = axes[i][j]
      ax.imshow(np.clip(samples[key][i], 0, 1), interpolation="nearest")
      ax.set_xticks([])
      ax.set_yticks([])
      if i == 0:
        ax.set_title(title, fontsize=8.5)
    axes[i][0].set_ylabel(short_name(samples["image"][i]), fontsize=8)
  fig.suptitle(f"{model}: validation images after the first and the selected epoch", fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=130)
  plt.close(fig)


def hint_curves_chart(table: Mapping, models: Sequence[str], domains: Sequence[str],
                      trained_on: Mapping[str, Sequence[str]], path: str) -> None:
  """ΔE00 vs number of hints (sampled from the truth), one panel per test domain: each model
  given the hints and propagated over its prediction, and propagation alone (grey prior)."""
  plt = _plt()
  counts = list(table["counts"])
  xs = np.arange(len(counts))
  fig, axes = plt.subplots(1, len(domains), figsize=(4.4 * len(domains), 3.8), squeeze=False)
  for ax, domain in zip(axes[0], domains):
    for m in models:
      cells = table["methods"][f"{m}+propagation"][domain]
      ax.plot(xs, [cells[str(n)]["delta_e"] for n in counts], "o-", color=COLORS.get(m),
              label=f"{model_label(m, trained_on)} + propagation")
    cells = table["methods"]["propagation"][domain]
    ax.plot(xs, [cells[str(n)]["delta_e"] for n in counts], "s--", color="#9a9a9a",
            label="propagation alone (grey prior)")
    ax.set_xticks(xs, [str(n) for n in counts])
    ax.set_xlabel("hints per image (sampled from the truth)")
    ax.set_ylabel(LABELS["delta_e"])
    n_img = next(iter(cells.values()))["n"]
    ax.set_title(f"test domain: {domain} ({n_img} images)", fontsize=9)
    ax.grid(alpha=0.3)
  axes[0][0].legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=130)
  plt.close(fig)


def hint_findings(table: Mapping, models: Sequence[str], domains: Sequence[str]) -> list[str]:
  """One sentence: which model's hinted, propagated colours have the lowest mean ΔE00 across
  the test domains at the largest count up to 10 hints, and how far hints take each model."""
  counts = [n for n in table["counts"] if n <= 10] or list(table["counts"])
  n, n0 = max(counts), min(table["counts"])
  mean = lambda method, k: float(np.mean([table["methods"][method][d][str(k)]["delta_e"]
                                          for d in domains]))
  at = {m: mean(f"{m}+propagation", n) for m in models}
  best = min(at, key=at.get)
  parts = ", ".join(f"{m} {mean(f'{m}+propagation', n0):.2f} → {at[m]:.2f}" for m in models)
  prop = mean("propagation", n)
  return [f"Hints: with {n} hints per image (sampled from the truth) the {best} model propagates "
          f"them best across {' and '.join(domains)} (mean ΔE00 over the domains, {n0} → {n} "
          f"hints: {parts}; propagation alone over grey reaches {prop:.2f})."]


def short_name(image: str) -> str:
  """'builtin/toon/3/test' → 'toon test #3'; a file path → its file name."""
  parts = str(image).split("/")
  if parts[0] == "builtin" and len(parts) == 4:
    return f"{parts[1]} {parts[3]} #{parts[2]}"
  return os.path.basename(str(image))


def colorfulness_chart(summary: Sequence[Mapping], models: Sequence[str], domains: Sequence[str],
                       trained_on: Mapping[str, Sequence[str]], path: str) -> None:
  """Per test domain: the truth's colourfulness and each model's, with CIs and % vs truth."""
  plt = _plt()
  bars = ["truth", *models]
  fig, ax = plt.subplots(figsize=(3.5 + 0.8 * len(bars) * len(domains), 4.6))
  width = 0.8 / len(bars)
  ymax = 0.0
  for j, name in enumerate(bars):
    for i, domain in enumerate(domains):
      row = lookup(summary, models[0] if name == "truth" else name, domain)
      if row is None:
        continue
      key = "colorfulness_true" if name == "truth" else "colorfulness_pred"
      mean, lo, hi = row[f"{key}_mean"], row[f"{key}_ci_low"], row[f"{key}_ci_high"]
      x = i + (j - (len(bars) - 1) / 2) * width
      label = None if i else ("ground truth" if name == "truth" else model_label(name, trained_on))
      ax.bar(x, mean, width * 0.92, yerr=[[max(mean - lo, 0)], [max(hi - mean, 0)]], capsize=3,
             color=COLORS.get(name), edgecolor="black", linewidth=0.6, label=label,
             hatch="//" if name in BASELINES else None)
      text = f"{mean:.1f}"
      if name != "truth":
        true = row["colorfulness_true_mean"]
        text += f"\n{_pct(mean, true):+.0f}%" if true > 0 else ""
      ax.annotate(text, (x, hi), xytext=(0, 2), textcoords="offset points", ha="center",
                  va="bottom", fontsize=7.5)
      ymax = max(ymax, hi)
  ax.set_xticks(range(len(domains)))
  ax.set_xticklabels([f"test domain: {d}" for d in domains])
  ax.set_ylabel("colourfulness M (closer to truth is better)")
  ax.set_title("Colourfulness of predictions vs ground truth (mean, 95% CI; % vs truth)",
               fontsize=10)
  ax.set_ylim(0, ymax * 1.2 if ymax > 0 else 1.0)
  _finish(fig, ax, path)


def _pct(value: float, reference: float) -> float:
  return 100.0 * (value - reference) / reference if reference else float("nan")


# ---------------------------------------------------------------------------------------------
# Findings: sentences computed from the summary
# ---------------------------------------------------------------------------------------------

def _ci(row, metric) -> str:
  return f"{row[f'{metric}_ci_low']:.2f}–{row[f'{metric}_ci_high']:.2f}"


def _overlap(a, b, metric) -> bool:
  return a[f"{metric}_ci_low"] <= b[f"{metric}_ci_high"] and b[f"{metric}_ci_low"] <= a[f"{metric}_ci_high"]


def _names(items: Sequence[str]) -> str:
  items = list(items)
  return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def findings(summary: Sequence[Mapping], models: Sequence[str], domains: Sequence[str],
             trained_on: Mapping[str, Sequence[str]]) -> list[str]:
  """Plain sentences stating what the numbers show (best model, margins, CIs, baselines)."""
  out = []
  for domain in domains:
    ranked = sorted((r for m in models if (r := lookup(summary, m, domain)) is not None),
                    key=lambda r: r["delta_e_mean"])
    if not ranked:
      continue
    best = ranked[0]
    s = (f"On the **{domain}** test images (n = {best['n']}), the best model by ΔE00 is "
         f"**{best['model']}** (mean {best['delta_e_mean']:.2f}, 95% CI {_ci(best, 'delta_e')})")
    if len(ranked) > 1:
      nxt = ranked[1]
      diff = nxt["delta_e_mean"] - best["delta_e_mean"]
      s += (f", {diff:.2f} lower ({100 * diff / nxt['delta_e_mean']:.1f}%) than the next, "
            f"{nxt['model']} ({nxt['delta_e_mean']:.2f}, CI {_ci(nxt, 'delta_e')}); ")
      s += ("their intervals overlap, so this difference is within the sampling uncertainty."
            if _overlap(best, nxt, "delta_e") else "their intervals do not overlap.")
    else:
      s += "."
    out.append(s)
    base = [r for b in BASELINES if (r := lookup(summary, b, domain)) is not None]
    if base:
      parts = []
      for r in ranked:
        beats = [b["model"] for b in base if r["delta_e_mean"] < b["delta_e_mean"]]
        clear = [b["model"] for b in base if r["delta_e_ci_high"] < b["delta_e_ci_low"]]
        if len(beats) == len(base):
          verdict = "beats both baselines" if len(base) > 1 else f"beats {base[0]['model']}"
        elif beats:
          verdict = f"beats only {', '.join(beats)}"
        else:
          verdict = "beats neither baseline" if len(base) > 1 else f"does not beat {base[0]['model']}"
        if clear:
          verdict += (f" (its 95% CI lies below {clear[0]}'s)" if len(clear) == 1 else
                      " (its 95% CI lies below both baselines' CIs)")
        parts.append(f"{r['model']} {verdict}")
      base_txt = " and ".join(f"{b['model']} {b['delta_e_mean']:.2f}" for b in base)
      out.append(f"Against the baselines on {domain} (ΔE00 {base_txt}): {'; '.join(parts)}.")
  # Transfer: each single-domain model on its own domain vs the other.
  for model in models:
    own = list(trained_on.get(model, ()))
    if len(own) != 1 or own[0] not in domains:
      continue
    home = lookup(summary, model, own[0])
    for other in domains:
      away = lookup(summary, model, other)
      if other == own[0] or home is None or away is None:
        continue
      change = _pct(away["delta_e_mean"], home["delta_e_mean"])
      out.append(f"The {model} model (trained on {own[0]} only) has ΔE00 "
                 f"{home['delta_e_mean']:.2f} on {own[0]} and {away['delta_e_mean']:.2f} on "
                 f"{other} ({change:+.0f}% on the unseen domain).")
  # Mixed vs each specialist on the specialist's domain.
  mixed = [m for m in models if len(trained_on.get(m, ())) > 1]
  for m in mixed:
    for domain in domains:
      spec = [s for s in models if list(trained_on.get(s, ())) == [domain]]
      a, b = lookup(summary, m, domain), spec and lookup(summary, spec[0], domain)
      if a is None or not b:
        continue
      diff = a["delta_e_mean"] - b["delta_e_mean"]
      word = "lower" if diff < 0 else "higher"
      out.append(f"On {domain}, the {m} model's ΔE00 is {abs(diff):.2f} {word} than that of "
                 f"the {spec[0]} model, trained on {domain} only ({a['delta_e_mean']:.2f} vs {b['delta_e_mean']:.2f}"
                 f"{'; CIs overlap' if _overlap(a, b, 'delta_e') else '; CIs do not overlap'}).")
  # Saturation.
  for domain in domains:
    rows = [r for m in models if (r := lookup(summary, m, domain)) is not None]
    if not rows or rows[0]["colorfulness_true_mean"] <= 0:
      continue
    true = rows[0]["colorfulness_true_mean"]
    pcts = [(r["model"], _pct(r["colorfulness_pred_mean"], true)) for r in rows]
    less = [p[0] for p in pcts if p[1] < 0]
    more = [p[0] for p in pcts if p[1] >= 0]
    if not more:
      head = f"On {domain}, every model's predictions are less colourful than the truth"
    elif not less:
      head = f"On {domain}, every model's predictions are at least as colourful as the truth"
    else:
      head = (f"On {domain}, {_names(less)} {'is' if len(less) == 1 else 'are'} less colourful "
              f"than the truth and {_names(more)} {'is' if len(more) == 1 else 'are'} more")
    out.append(f"{head} (truth M = {true:.1f}; " +
               ", ".join(f"{m} {p:+.0f}%" for m, p in pcts) + ").")
  return out


# ---------------------------------------------------------------------------------------------
# report.md
# ---------------------------------------------------------------------------------------------

def _md_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
  lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
  lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
  return "\n".join(lines)


def _mean_ci(row, metric, digits) -> str:
  f = f"{{:.{digits}f}}"
  return (f"{f.format(row[f'{metric}_mean'])} [{f.format(row[f'{metric}_ci_low'])}, "
          f"{f.format(row[f'{metric}_ci_high'])}]")


def summary_table(summary: Sequence[Mapping]) -> str:
  header = ["model", "test domain", "n", "ΔE00 ↓ mean [95% CI]", "ΔE00 median",
            "SSIM ↑ mean [95% CI]", "PSNR dB ↑ mean [95% CI]", "colourfulness pred / truth"]
  rows = [[r["model"], r["domain"], r["n"], _mean_ci(r, "delta_e", 2),
           f"{r['delta_e_median']:.2f}", _mean_ci(r, "ssim", 4), _mean_ci(r, "psnr", 2),
           f"{r['colorfulness_pred_mean']:.1f} / {r['colorfulness_true_mean']:.1f}"]
          for r in summary]
  return _md_table(header, rows)


def _duration(seconds) -> str:
  if seconds is None:
    return "n/a"
  m, s = divmod(int(round(seconds)), 60)
  return f"{m} min {s:02d} s" if m else f"{s} s"


def write_markdown(path: str, summary: Sequence[Mapping], setup: Mapping, sentences: Sequence[str],
                   figures: Mapping[str, str]) -> None:
  """report.md: setup, the findings, the summary table and the figures (relative links)."""
  models = setup["models"]
  parts = [f"# Cross-domain colourisation study: {', '.join(setup['model_names'])} "
           f"on {' and '.join(setup['domains'])}", ""]
  parts += ["## Findings", "", *[f"- {s}" for s in sentences], ""]
  parts += ["## Setup", "",
            f"- Config: `{setup.get('config_name', '')}`; image size {setup['image_size']} px; "
            f"batch {setup['batch_size']}; {setup['num_epochs']} epochs "
            f"({setup['pretrain_epochs']} L1-only warm-up); generator "
            f"{setup['encoder']}-UNet.",
            f"- Hardware: {setup['hardware']}.",
            f"- Baselines: `gray` predicts ab = 0 (the grey input itself); `mean_ab` predicts "
            f"everywhere the mean normalised ab {setup['mean_ab_text']}.",
            f"- Confidence intervals: {int(CI_LEVEL * 100)}% percentile bootstrap of the mean "
            f"over test images ({BOOTSTRAP_RESAMPLES} resamples, seed {BOOTSTRAP_SEED}).",
            f"- Total study wall time this invocation: {_duration(setup.get('study_wall_s'))}.",
            ""]
  parts += ["Images per domain (per single-domain model; the mixed model takes the first half "
            "of each domain's training images):", ""]
  parts += [_md_table(["domain", "train", "validation", "test"],
                      [[d, s["train"], s["val"], s["test"]]
                       for d, s in setup["data_sizes"].items()]), ""]
  parts += [_md_table(
      ["model", "trained on", "train images", "steps (per epoch × epochs)", "selected epoch (step)",
       "val L1 at selection", "training wall time", "this invocation"],
      [[m, " + ".join(info["domains"]), info["train_images"],
        f"{info['total_steps']} ({info['steps_per_epoch']} × {setup['num_epochs']})",
        f"{info['selected_epoch']} ({info['selected_step']})",
        "n/a" if info.get("selected_val_loss") is None else f"{info['selected_val_loss']:.4f}",
        _duration(info.get("wall_time_s")), info["status"]]
       for m, info in models.items()]), "",
            "Training wall time includes compilation: in a fresh study directory the first model "
            "compiles the programs that the other two then load from the study's compilation "
            "cache (`.jax_cache`).", ""]
  parts += ["## Results", "", summary_table(summary), "",
            "ΔE00: CIEDE2000 colour difference between prediction and truth (lower is better); "
            "SSIM and PSNR on RGB (higher is better); colourfulness: Hasler–Süsstrunk M "
            "(closer to truth is better). All metrics are computed on RGB rebuilt from the true "
            "L and the predicted ab, so only colour is judged. Per-image values: "
            "`per_image.csv`; this table: `summary.csv`, `summary.json`.", ""]
  parts += ["## Figures", ""]
  for title, fname in figures.items():
    parts += [f"### {title}", "", f"![{title}]({fname})", ""]
  with open(path, "w") as f:
    f.write("\n".join(parts))
