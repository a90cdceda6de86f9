"""Run logs: `metrics.jsonl` (one JSON object per line), TensorBoard events, a tqdm bar."""
from __future__ import annotations

import json
import math
import os
import time

import jax
from tqdm.auto import tqdm


class Progress:
  """A tqdm bar over steps that shows the latest losses and images/s."""

  def __init__(self, total: int, start: int, steps_per_epoch: int, batch_size: int, enabled: bool):
    self.batch_size, self.steps_per_epoch = batch_size, steps_per_epoch
    self.bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True,
                    disable=not enabled, mininterval=1.0)
    self._t0, self._s0, self._last = time.time(), start, start

  def update(self, step: int, values: dict) -> None:
    self.bar.update(step - self._last)
    self._last = step
    shown = {k: f"{v:.3g}" for k, v in values.items()}
    shown["img/s"] = f"{self.rate():.1f}"
    shown["epoch"] = step // max(self.steps_per_epoch, 1) + 1
    self.bar.set_postfix(shown, refresh=False)

  def rate(self) -> float:
    """Images/s since the bar started (includes the first step's compilation)."""
    dt = time.time() - self._t0
    return (self._last - self._s0) * self.batch_size / dt if dt > 0 else 0.0

  def close(self) -> None:
    self.bar.close()


class MetricLogger:
  """Appends to WORKDIR/metrics.jsonl and writes TensorBoard scalars (process 0 only)."""

  def __init__(self, workdir: str, batch_size: int = 1):
    self.enabled = jax.process_index() == 0
    self.workdir, self.batch_size = workdir, batch_size
    self._tb = None
    if self.enabled:
      from tensorboardX import SummaryWriter
      self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))

  def write(self, record: dict) -> None:
    if not self.enabled:
      return
    record = {"time": time.time(), **record}
    with open(os.path.join(self.workdir, "metrics.jsonl"), "a") as f:
      f.write(json.dumps(record, allow_nan=True) + "\n")
    prefix = record.get("type", "step")
    for k, v in record.items():
      if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("step", "time"):
        if math.isfinite(v):
          self._tb.add_scalar(f"{prefix}/{k}", v, record.get("step", 0))
    self._tb.flush()

  def progress(self, total: int, start: int, steps_per_epoch: int) -> Progress:
    return Progress(total, start, steps_per_epoch, self.batch_size, self.enabled)

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()


def read_metrics(workdir: str) -> list[dict]:
  """All records of WORKDIR/metrics.jsonl (a truncated last line, e.g. after a kill, is ignored)."""
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  out = []
  with open(path) as f:
    for line in f:
      try:
        out.append(json.loads(line))
      except json.JSONDecodeError:
        pass
  return out
