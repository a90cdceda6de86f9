"""XLA flags that colorjax's own programs (launch.py, the benchmarks) set before JAX starts.

XLA:CPU in jaxlib 0.10 hands every float32 convolution to YNNPACK. For this model YNNPACK runs
the weight-gradient convolutions at 35-65 GFLOP/s where XLA's Eigen path does 140-190, and
Eigen's forward convolutions are as fast or faster (2-core Xeon; benchmarks/convolutions.py).
With convolutions left to Eigen (YNNPACK's other fusions kept) the CPU D+G step is about 20%
faster (benchmarks/train_step.py). GPU backends ignore the flag.

The flag is experimental, and a jaxlib that does not know an XLA flag aborts the process, so
it is set only for the jaxlib versions where it was measured, and never over a setting of the
same flag already in XLA_FLAGS. XLA reads XLA_FLAGS when JAX creates its first backend: call
`apply()` before the first computation (in a notebook: in its first cell).
"""
from __future__ import annotations

import importlib.metadata
import os

CPU_CONVOLUTIONS_TO_EIGEN = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution"
_MEASURED_JAXLIB = ((0, 10),)          # (major, minor) versions the flag was measured on


def jaxlib_version() -> tuple[int, int] | None:
  try:
    major, minor = importlib.metadata.version("jaxlib").split(".")[:2]
    return int(major), int(minor)
  except (importlib.metadata.PackageNotFoundError, ValueError):
    return None


def with_cpu_flags(xla_flags: str, version: tuple[int, int] | None) -> str:
  """`xla_flags` plus colorjax's CPU flag where jaxlib `version` is known to take it and the
  flag is not set already."""
  name = CPU_CONVOLUTIONS_TO_EIGEN.split("=")[0]
  if version not in _MEASURED_JAXLIB or name in xla_flags:
    return xla_flags
  return f"{xla_flags} {CPU_CONVOLUTIONS_TO_EIGEN}".strip()


def apply() -> str:
  """Adds colorjax's CPU flag to $XLA_FLAGS (see the module docstring); returns XLA_FLAGS."""
  flags = with_cpu_flags(os.environ.get("XLA_FLAGS", ""), jaxlib_version())
  if flags:
    os.environ["XLA_FLAGS"] = flags
  return flags


def cpu_convolutions_on_eigen() -> bool:
  """Whether this process runs with colorjax's CPU flag (set by `apply()` or by hand)."""
  return CPU_CONVOLUTIONS_TO_EIGEN in os.environ.get("XLA_FLAGS", "")
