"""colorjax/xla_flags.py: the CPU flag goes only where it is known, never over a user's own
setting, and (on the jaxlib it was measured on) takes convolutions off YNNPACK."""
import os
import subprocess
import sys

import pytest

from colorjax import xla_flags
from conftest import ROOT

FLAG = xla_flags.CPU_CONVOLUTIONS_TO_EIGEN


def test_flag_added_only_for_measured_jaxlib():
  assert xla_flags.with_cpu_flags("", (0, 10)) == FLAG
  assert xla_flags.with_cpu_flags("--xla_dump_to=/d", (0, 10)) == f"--xla_dump_to=/d {FLAG}"
  for version in [(0, 9), (0, 12), (1, 0), None]:    # unknown flags abort XLA: leave them be
    assert xla_flags.with_cpu_flags("--xla_dump_to=/d", version) == "--xla_dump_to=/d"


def test_users_own_setting_wins():
  own = "--xla_cpu_experimental_ynn_fusion_type=individual_dot"
  assert xla_flags.with_cpu_flags(own, (0, 10)) == own


PROBE = """
from colorjax import xla_flags
print(xla_flags.apply())
import jax
x = jax.ShapeDtypeStruct((4, 64, 64, 32), "float32")
w = jax.ShapeDtypeStruct((3, 3, 32, 32), "float32")
conv = lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                                 dimension_numbers=("NHWC", "HWIO", "NHWC"))
dw = lambda x, w: jax.vjp(lambda w: conv(x, w), w)[1](conv(x, w))[0]
print(sum(jax.jit(f).lower(x, w).compile().as_text().count("__ynn") for f in (conv, dw)))
"""


@pytest.mark.skipif(xla_flags.jaxlib_version() not in xla_flags._MEASURED_JAXLIB,
                    reason="colorjax sets no XLA flag for this jaxlib")
def test_applied_flag_moves_convolutions_off_ynnpack():
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  env["JAX_PLATFORMS"] = "cpu"
  out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  flags, ynn = out.stdout.strip().rsplit("\n", 1)
  assert flags.strip() == FLAG
  assert int(ynn) == 0
