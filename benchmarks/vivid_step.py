"""What the classification loss costs: the full D+G step of the recipe (L1 head) and of vivid
(262-logit head, rebalanced cross-entropy, annealed mean) side by side, vivid with the soft
encoding over each pixel's 25 neighbouring cells (`ab_bins.soft_encode_local`, the default)
and over all 262 bins (`soft_encode`, the reference and fallback).

The three compiled steps run in turn, one step each per round, so all see the same machine
load; the median step time of each and the ratios are printed. The batch holds random L and
a*b* of random sRGB colours (so the local encoding is exact, as it is for images).

  python benchmarks/vivid_step.py                                  # demo widths, 16 × 64 px
  python benchmarks/vivid_step.py --size 256 --width 64 --encoder resnet34 --rounds 3
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from colorjax import xla_flags  # noqa: E402

xla_flags.apply()

import jax  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import vivid as vivid_bench  # noqa: E402
from colorjax import ab_bins, color, train  # noqa: E402


def step_config(loss: str, args):
  """benchmarks/vivid.py's `recipe` or `vivid` variant (configs/demo.py, automatic), at the
  given batch and encoder; width 64 also takes the recipe's full-size decoder and PatchGAN."""
  from configs import default
  config = vivid_bench.variant_config(loss, args.size, 0.0)
  config.batch_size = args.batch
  config.model.encoder, config.model.encoder_width = args.encoder, args.width
  if args.width == 64:
    config.model.decoder_widths = default.get_config().model.decoder_widths
    config.disc.width = 64
  return config


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--batch", type=int, default=16)
  p.add_argument("--size", type=int, default=64)
  p.add_argument("--encoder", default="resnet18", choices=("resnet34", "resnet18", "resnet10"))
  p.add_argument("--width", type=int, default=16, help="encoder width (64 = full size)")
  p.add_argument("--rounds", type=int, default=8, help="timed rounds (one step of each)")
  args = p.parse_args(argv)
  rng = np.random.default_rng(0)
  shape = (args.batch, args.size, args.size)
  batch = {"L": rng.uniform(-1, 1, (*shape, 1)).astype(np.float32),
           "ab": color.normalize_ab(color.rgb_to_lab(rng.random((*shape, 3)))[..., 1:])
           .astype(np.float32)}
  steps = {}
  for name, loss, local in (("recipe", "recipe", None), ("vivid, local encoding", "vivid", True),
                            ("vivid, dense encoding", "vivid", False)):
    config = step_config(loss, args)
    prior = np.full(ab_bins.num_bins(), 1.0 / ab_bins.num_bins()) if local is not None else None
    trainer = train.Trainer(config, ab_prior=prior)
    if local is not None:
      trainer.colour_loss.local_encoding = local
    state, b = trainer.init(0), trainer.shard_batch(batch)
    state, m = trainer.gan_step(state, b)              # compile + first step
    jax.block_until_ready(m)
    steps[name] = [trainer, state, b, []]
  for _ in range(args.rounds):
    for s in steps.values():
      t = time.perf_counter()
      s[1], m = s[0].gan_step(s[1], s[2])
      jax.block_until_ready(m)
      s[3].append(time.perf_counter() - t)
  dev = jax.devices()[0]
  print(f"{jax.device_count()} × {dev.platform} {dev.device_kind}, batch {args.batch}, "
        f"{args.size} px, {args.encoder} width {args.width}, median of {args.rounds} rounds:")
  med = {k: statistics.median(s[3]) for k, s in steps.items()}
  for k, t in med.items():
    print(f"  {k:24s} {t * 1e3:8.1f} ms/step  {t / med['recipe']:5.2f}× the recipe's")
  ratio = med["vivid, local encoding"] / med["vivid, dense encoding"]
  print(f"  local / dense encoding: {ratio:.2f}×")
  return med


if __name__ == "__main__":
  main()
