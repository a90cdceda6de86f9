"""The benchmark scripts run end to end and print their tables (tiny sizes: behaviour, not
speed; the numbers are measured by hand, see README)."""
import os
import re
import subprocess
import sys

from conftest import ROOT


def _run(script, *args):
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  out = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", script), *args],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stdout + out.stderr
  return out.stdout


def test_train_step_prints_throughput_and_flops():
  out = _run("train_step.py", "--batch", "2", "--size", "32", "--steps", "1", "--warmup", "0",
             "--peer", "off", "--encoder", "resnet10", "--width", "8", "--disc_width", "8")
  row = re.search(r"colorjax \(JAX\)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", out)
  assert row and all(float(v) > 0 for v in row.groups()), out
  assert "GFLOP per step" in out


def test_convolution_census_times_every_convolution_of_the_step():
  out = _run("convolutions.py", "--census", "--batch", "1", "--size", "32", "--repeats", "1",
             "--top", "3")
  count = int(re.search(r"(\d+) convolutions in the compiled step", out).group(1))
  assert count > 100, out                    # G and D, forward and both gradients
  assert re.search(r"by kind: .*forward .*s", out) and "weight gradient" in out
  assert re.search(r"sum of all convolutions: [\d.]+ s per step", out)


def test_metrics_benchmark_prints_both_ratios():
  out = _run("metrics.py", "--pixels", "20000", "--repeats", "1", "--ssim-batch", "2")
  assert re.search(r"colorjax float32 vs skimage float64: [\d.]+x", out), out
  assert re.search(r"colorjax vs skimage float64: [\d.]+x", out), out
