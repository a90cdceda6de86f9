"""The three-model study end to end at tiny scale: files, statistics, baselines, selection, reuse."""
import csv
import json
import os
import time

import numpy as np
import pytest
from PIL import Image
from skimage import color as skcolor

from colorjax import config_lib, evaluate, report, study
from colorjax.data import decode, sources
from colorjax.logs import read_metrics
from conftest import make_tiny_config

DOMAINS = ("toon", "photo")
N_TEST = 6
FIGURES = ("delta_e.png", "ssim.png", "losses.png", "colorfulness.png",
           *(f"samples_{d}.png" for d in DOMAINS),
           # The paper's Figure 3 per model; the tiny config is a hint model (configs/demo.py).
           *(f"epochs_{m}.png" for m in ("cartoon", "movie", "mixed")), "hints.png")


def study_config(**overrides):
  return make_tiny_config(**{"data.domains": DOMAINS, "num_epochs": 3, "pretrain_epochs": 0,
                             "data.train_size": 16, "data.val_size": 4,
                             "data.test_size": N_TEST, **overrides})


def _snapshot(run_dir):
  """Every file under checkpoints/ with its mtime, plus metrics.jsonl's bytes."""
  files = {}
  for root, _, names in os.walk(os.path.join(run_dir, "checkpoints")):
    for n in names:
      p = os.path.join(root, n)
      files[os.path.relpath(p, run_dir)] = os.stat(p).st_mtime_ns
  with open(os.path.join(run_dir, "metrics.jsonl"), "rb") as f:
    return files, f.read()


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("study"))
  t0 = time.time()
  path = study.run_study(study_config(), workdir)
  first = time.time() - t0
  assert path == os.path.join(workdir, "report", "report.md")
  return workdir, first


def _summary_csv(workdir):
  with open(os.path.join(workdir, "report", "summary.csv"), newline="") as f:
    return list(csv.DictReader(f))


def test_study_writes_every_file(study_dir):
  workdir, _ = study_dir
  out = os.path.join(workdir, "report")
  for name in ("per_image.csv", "summary.csv", "summary.json", "report.md", *FIGURES):
    assert os.path.getsize(os.path.join(out, name)) > 0, name
  for name in FIGURES:
    with Image.open(os.path.join(out, name)) as im:
      assert im.size[0] > 300 and im.size[1] > 200, (name, im.size)
  for model in study.MODELS:
    assert os.path.isdir(os.path.join(workdir, model, "checkpoints"))
  rows = report.read_per_image(os.path.join(out, "per_image.csv"))
  expected = {(m, d) for m in (*study.MODELS, *report.BASELINES) for d in DOMAINS}
  assert {(r["model"], r["domain"]) for r in rows} == expected
  assert len(rows) == len(expected) * N_TEST
  md = open(os.path.join(out, "report.md")).read()
  for name in FIGURES:
    assert f"]({name})" in md
  for model in (*study.MODELS, *report.BASELINES):
    assert f"| {model} |" in md
  summary = json.load(open(os.path.join(out, "summary.json")))
  # The sentences are computed from the numbers: the best model named for each domain is the
  # trained model with the lowest mean ΔE00.
  for d in DOMAINS:
    best = min((r for r in summary["summary"] if r["domain"] == d and r["model"] in study.MODELS),
               key=lambda r: r["delta_e_mean"])
    assert any(f"**{d}**" in s and f"**{best['model']}**" in s for s in summary["findings"])
  assert summary["setup"]["data_sizes"]["toon"] == {"train": 16, "val": 4, "test": N_TEST}
  # Hint models: ΔE00 by number of hints per model × domain, and who propagates them best.
  hints = summary["hints"]
  assert hints["counts"] == list(study.HINT_COUNTS)
  at10 = {m: np.mean([hints["methods"][f"{m}+propagation"][d]["10"]["delta_e"] for d in DOMAINS])
          for m in study.MODELS}
  best = min(at10, key=at10.get)
  assert any(f"the {best} model propagates them best" in s for s in summary["findings"])
  assert summary["setup"]["models"]["mixed"]["train_images"] == 16   # 8 of each domain


def test_summary_equals_recomputation_from_per_image(study_dir):
  workdir, _ = study_dir
  rows = report.read_per_image(os.path.join(workdir, "report", "per_image.csv"))
  summary = _summary_csv(workdir)
  assert len(summary) == len(study.MODELS + report.BASELINES) * len(DOMAINS)
  for s in summary:
    group = [r for r in rows if r["model"] == s["model"] and r["domain"] == s["domain"]]
    assert int(s["n"]) == len(group) == N_TEST
    for m in report.METRICS:
      x = np.array([r[m] for r in group])
      np.testing.assert_allclose(float(s[f"{m}_mean"]), x.mean(), rtol=1e-12, atol=1e-12)
      np.testing.assert_allclose(float(s[f"{m}_median"]), np.median(x), rtol=1e-12, atol=1e-12)
      lo, hi = report.bootstrap_ci(x)
      assert float(s[f"{m}_ci_low"]) == pytest.approx(lo, rel=1e-12, abs=1e-12)
      assert float(s[f"{m}_ci_high"]) == pytest.approx(hi, rel=1e-12, abs=1e-12)
      assert x.min() - 1e-9 <= lo <= x.mean() + 1e-9 <= hi + 2e-9 <= x.max() + 3e-9


def test_gray_baseline_delta_e_matches_skimage(study_dir):
  workdir, _ = study_dir
  rows = report.read_per_image(os.path.join(workdir, "report", "per_image.csv"))
  config = study_config()
  got = {(r["domain"], r["image"]): r["delta_e"] for r in rows if r["model"] == "gray"}
  assert len(got) == len(DOMAINS) * N_TEST
  for d in DOMAINS:
    for record in sources.domain_splits(config.data, d, config.seed).test:
      rgb = decode.load_rgb(record, config.image_size).astype(np.float64) / 255.0
      lab = skcolor.rgb2lab(rgb)
      # ab = 0 keeps only lightness: the gray prediction's RGB is lab2rgb(L, 0, 0).
      grey_rgb = skcolor.lab2rgb(np.stack([lab[..., 0], np.zeros_like(lab[..., 0]),
                                           np.zeros_like(lab[..., 0])], axis=-1))
      expected = skcolor.deltaE_ciede2000(lab, skcolor.rgb2lab(grey_rgb)).mean()
      assert got[(d, evaluate.record_name(record))] == pytest.approx(expected, rel=2e-3, abs=2e-3)
      assert expected > 1.0      # the images do have colour: the comparison is not vacuous


def test_selected_checkpoint_is_the_lowest_validation_loss_epoch(study_dir):
  workdir, _ = study_dir
  setup = json.load(open(os.path.join(workdir, "report", "summary.json")))["setup"]
  for model in study.MODELS:
    epochs = [r for r in read_metrics(os.path.join(workdir, model)) if r["type"] == "epoch"]
    assert len(epochs) == 3
    lowest = min(r["val_loss"] for r in epochs)
    best = [(r["epoch"], r["step"]) for r in epochs if r["val_loss"] == lowest]   # ties: any
    info = setup["models"][model]
    assert (info["selected_epoch"], info["selected_step"]) in best
    assert info["selected_val_loss"] == lowest


def test_second_invocation_reuses_finished_runs(study_dir):
  workdir, first = study_dir
  before = {m: _snapshot(os.path.join(workdir, m)) for m in study.MODELS}
  times = {m: json.load(open(os.path.join(workdir, m, study.TIME_FILE))) for m in study.MODELS}
  t0 = time.time()
  study.run_study(study_config(), workdir)
  second = time.time() - t0
  assert {m: _snapshot(os.path.join(workdir, m)) for m in study.MODELS} == before
  assert {m: json.load(open(os.path.join(workdir, m, study.TIME_FILE))) for m in study.MODELS} == times
  setup = json.load(open(os.path.join(workdir, "report", "summary.json")))["setup"]
  for m in study.MODELS:
    assert setup["models"][m]["status"] == "reused"
    assert setup["models"][m]["wall_time_s"] == pytest.approx(times[m]["wall_time_s"])
  assert second < 0.6 * first, (first, second)


def test_half_finished_run_resumes(tmp_path, study_dir):
  workdir = str(tmp_path)
  config = study_config(num_epochs=2, pretrain_epochs=0)
  one_epoch = study.model_configs(study_config(num_epochs=1, pretrain_epochs=0))["cartoon"]
  from colorjax import train
  # The same programs as the study's: reuse its compilation cache to keep the test fast.
  with study.compilation_cache(os.path.join(study_dir[0], ".jax_cache")):
    train.train_and_evaluate(one_epoch, os.path.join(workdir, "cartoon"))
    info = study.train_model("cartoon", study.model_configs(config)["cartoon"],
                             os.path.join(workdir, "cartoon"))
  assert info["status"] == "resumed from step 4"
  epochs = [r["epoch"] for r in read_metrics(os.path.join(workdir, "cartoon"))
            if r["type"] == "epoch"]
  assert epochs == [1, 2]
  assert study.latest_step(os.path.join(workdir, "cartoon")) == 8


@pytest.mark.parametrize("domains", [("toon",), ("toon", "photo", "toon")])
def test_study_needs_exactly_two_domains(tmp_path, domains):
  with pytest.raises(config_lib.ConfigError, match="exactly 2 domains"):
    study.run_study(study_config(**{"data.domains": domains}), str(tmp_path / "s"))
  assert not os.path.exists(tmp_path / "s")


def test_findings_follow_the_numbers():
  """Swapping which model is better swaps the sentence: nothing is hard-coded."""
  noise = np.random.default_rng(0).normal(0, 0.1, 30)   # the same spread for every model

  def rows(errors):
    out = []
    for model, mu in errors.items():
      for i, e in enumerate(mu + noise):
        out.append({"model": model, "domain": "toon", "image": str(i), "delta_e": e, "ssim": 0.9,
                    "psnr": 25.0, "colorfulness_pred": 10.0, "colorfulness_true": 20.0})
    return out

  trained_on = {"cartoon": ["toon"], "movie": ["photo"], "mixed": ["toon", "photo"]}
  for best, errors in (("movie", {"cartoon": 9.0, "movie": 5.0, "mixed": 9.5, "gray": 12.0}),
                       ("mixed", {"cartoon": 9.0, "movie": 9.2, "mixed": 8.99, "gray": 12.0})):
    summary = report.summarize(rows(errors))
    text = " ".join(report.findings(summary, study.MODELS, ["toon"], trained_on))
    assert f"best model by ΔE00 is **{best}**" in text
    assert ("do not overlap" in text) == (best == "movie")
    assert "less colourful than the truth" in text and "-50%" in text
