"""benchmarks/device_check.py --dry-run: every section of the GPU check runs at tiny sizes on the
CPU and the report holds what the GPU session will read (behaviour, not speed)."""
import json
import math
import os
import subprocess
import sys

import pytest
from PIL import Image

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
import device_check  # noqa: E402
import train_step  # noqa: E402


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
  out = tmp_path_factory.mktemp("device_check")
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "device_check.py"),
                         str(out), "--dry-run"], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=900)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  return out, json.load(open(out / "report.json")), proc.stdout


def test_every_section_runs_and_the_report_is_written(dry_run):
  out, report, stdout = dry_run
  sections = report["sections"]
  assert list(sections) == list(device_check.ORDER)
  assert {n: r["status"] for n, r in sections.items()} == {n: "ok" for n in device_check.ORDER}
  assert report["dry_run"] and 0 < report["wall_s"] <= report["budget_s"]
  # What comes back from the device's $OUT: at most 8 plain files, no folders.
  files = sorted(os.listdir(out))
  assert set(files) <= set(device_check.OUT_FILES) and len(files) <= 8
  assert {"report.md", "report.json", "device_check.log", "samples.jpg"} <= set(files)
  md = (out / "report.md").read_text()
  assert "## Goals" in md and all(f"## {device_check.TITLES[n]}" in md
                                    for n in device_check.ORDER)
  assert stdout.rstrip().splitlines()[-1].startswith("wrote ")     # the summary ends the output
  assert "goal: model FLOP utilisation" in stdout


def test_environment_and_step_numbers(dry_run):
  _, report, _ = dry_run
  s = report["sections"]
  env = s["env"]["result"]
  assert env["platform"] == "cpu" and env["versions"]["jax"] and env["cpus"] >= 1
  for name in ("step_bfloat16", "step_float32"):
    r = s[name]["result"]
    assert r["img_per_s"] > 0 and r["tflop_per_s"] > 0 and r["losses_finite"]
    assert r["gflop_per_step"] > 0 and r["gflop_per_step_traced"] > 0
    assert r["peak_bf16_tflop_per_s"] > 0 and 0 < r["mfu"] < 1
    # MFU far below 35% on a CPU: the profile says where the time goes, by kind and by op.
    kinds = r["profile"]["ms_per_step_by_kind"]
    assert kinds["convolution, forward/input gradient"] > 0
    assert kinds["convolution, weight gradient"] > 0
    assert math.isclose(sum(r["profile"]["share_by_kind"].values()), 1.0, rel_tol=1e-6)
    assert r["profile"]["top_ops"][0]["ms"] > 0
  goals = {g["goal"]: g for g in report["goals"]}
  mfu = goals["model FLOP utilisation, bfloat16, batch 64, 256 px"]
  assert mfu["met"] is False and mfu["value"] == s["step_bfloat16"]["result"]["mfu"]


def test_tests_overfit_metrics_pipeline(dry_run):
  _, report, _ = dry_run
  s = {n: r["result"] for n, r in report["sections"].items()}
  assert s["tests"]["passed"] >= 1 and s["tests"]["failures"] == 0 and s["tests"]["returncode"] == 0
  assert s["overfit"]["dtype"] == "bfloat16" and s["overfit"]["factor"] < 0.5
  assert s["metrics"]["delta_e_mpx_per_s"] > 0 and s["metrics"]["ssim_img_per_s"] > 0
  assert s["pipeline"]["best_img_per_s"] > 0 and s["pipeline"]["pipeline_over_step"] > 0


def test_training_checkpoint_eval_and_samples(dry_run):
  out, report, _ = dry_run
  t = report["sections"]["train"]["result"]
  assert t["steps"] == t["step_cap"] == 4 and t["stopped_by"] == "step cap"
  assert t["checkpoints"]["steps"] == [2, 4] and t["checkpoints"]["mib"] > 0
  assert t["losses"][0]["step"] == 1 and t["losses"][-1]["step"] == 4
  assert all(math.isfinite(r["g_l1"]) and math.isfinite(r["d_loss"]) for r in t["losses"])
  assert set(t["eval"]) == {"cartoon", "movie"}
  for m in t["eval"].values():
    assert m["n"] == 2 and m["delta_e"] > 0 and 0 < m["ssim"] <= 1
  lines = (out / "eval_per_image.csv").read_text().splitlines()
  assert lines[0].startswith("domain,image") and len(lines) == 5
  with Image.open(out / "samples.jpg") as im:       # 2 rows (one per domain) of 3 panels
    assert im.height == 2 * 192 and im.width >= 3 * 192
  steps = [json.loads(l) for l in (out / "train_metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in steps if r["type"] == "step"] == [1, 2, 3, 4]


def test_gpu_hlo_and_kernels_are_classified():
  hlo = "\n".join([
      '%cudnn-conv-bw-filter.3 = (f32[3,3,64,64]{3,2,1,0}, u8[0]{0}) custom-call(%a, %b), '
      'window={size=3x3 pad=1_1x1_1}, custom_call_target="__cudnn$convBackwardFilter"',
      '%cudnn-conv.1 = (bf16[64,128,128,64]{3,2,1,0}, u8[0]{0}) custom-call(%x, %w), '
      'window={size=3x3 pad=1_1x1_1}, custom_call_target="__cudnn$convForward"',
      '%cudnn-conv-bw-input.2 = (bf16[64,128,128,64]{3,2,1,0}, u8[0]{0}) custom-call(%y, %w), '
      'window={size=3x3}, custom_call_target="__cudnn$convBackwardInput"',
      '%custom-call.7 = (f32[8,8]{1,0}, s8[4]{0}) custom-call(%p, %q), '
      'custom_call_target="__cublas$lt$matmul"',
      '%fusion.9 = f32[8]{0} fusion(%p), kind=kLoop, calls=%fused_computation.9'])
  kinds = train_step._op_kinds(hlo)
  assert kinds == {"cudnn-conv-bw-filter.3": "convolution, weight gradient",
                   "cudnn-conv.1": "convolution, forward/input gradient",
                   "cudnn-conv-bw-input.2": "convolution, forward/input gradient",
                   "custom-call.7": "matmul"}
  assert (train_step._kernel_kind("sm90_xmma_wgrad_implicit_gemm_bf16")
          == "convolution, weight gradient")
  assert train_step._kernel_kind("sm90_xmma_fprop_implicit_gemm_bf16f32") == (
      "convolution, forward/input gradient")
  assert train_step._kernel_kind("loop_add_fusion") is None


def test_bad_arguments_are_one_line_errors(tmp_path):
  for args, needle in (([str(tmp_path), "--sections", "env,gpu"], "--sections: unknown gpu"),
                       ([], "OUT_DIR is required")):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "device_check.py"),
                           *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and needle in proc.stderr, proc.stderr


def test_vivid_is_compared_with_the_recipe_of_an_earlier_check(dry_run, tmp_path):
  """`--sections vivid --baseline REPORT`: the second GPU call trains configs/vivid.py and
  puts issue 16's ratios against the first call's recipe in the goals."""
  first_out, first, _ = dry_run
  assert "vivid" not in first["sections"]
  vivid_goals = [g for g in first["goals"] if g["goal"].startswith("vivid vs recipe")]
  assert len(vivid_goals) == 2 and all(g["met"] is None for g in vivid_goals)
  out = tmp_path / "vivid"
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "device_check.py"),
                         str(out), "--dry-run", "--sections", "vivid", "--baseline",
                         str(first_out / "report.json")], cwd=ROOT,
                        env={**os.environ, "JAX_PLATFORMS": "cpu"}, capture_output=True,
                        text=True, timeout=600)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  report = json.load(open(out / "report.json"))
  v = report["sections"]["vivid"]
  assert v["status"] == "ok" and v["result"]["config"] == "configs/vivid.py"
  assert v["result"]["steps"] == 4 and set(v["result"]["eval"]) == {"cartoon", "movie"}
  assert sorted(os.listdir(out)) == ["device_check.log", "report.json", "report.md",
                                     "samples_vivid.jpg"]
  recipe = first["sections"]["train"]["result"]["eval"]
  for g in (g for g in report["goals"] if g["goal"].startswith("vivid vs recipe")):
    domain = g["goal"].split(", ")[1].split()[0]
    ours, base = v["result"]["eval"][domain], recipe[domain]
    colour = ours["colorfulness_pred"] / ours["colorfulness_true"]
    delta_e = ours["delta_e"] / base["delta_e"] - 1
    assert math.isclose(g["value"]["colourfulness"], colour, rel_tol=1e-9)
    assert math.isclose(g["value"]["delta_e"], delta_e, rel_tol=1e-9)
    assert g["met"] == (colour >= 0.8 and delta_e <= 0.05)
  assert "## Vivid colour" in (out / "report.md").read_text()


def test_a_bad_baseline_is_a_one_line_error(tmp_path):
  bad = tmp_path / "report.json"
  bad.write_text(json.dumps({"sections": {"env": {}}}))
  for path, needle in ((tmp_path / "none.json", "not a device check report.json"),
                       (bad, "not a device check report.json with a train section")):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "device_check.py"),
                           str(tmp_path / "out"), "--sections", "vivid", "--baseline",
                           str(path)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and f"--baseline={path}: {needle}" in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()
