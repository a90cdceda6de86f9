"""Vivid colour: the study's recipe with its under-saturation fixed in training.

The generator predicts a distribution over the 262 in-gamut a*b* bins (10-unit grid) and is
trained with Zhang et al. 2016's class-rebalanced cross-entropy on soft-encoded targets
(5 nearest centres, σ = 5; rebalancing λ = 0.5 over the training images' prior smoothed with
σ = 5, computed once per run into WORKDIR/ab_prior.json), plus the PatchGAN loss on the
annealed-mean colours (T = 0.6, measured best here; the paper's 0.38 is the default). Inference returns the annealed mean: nothing else changes
(colorize, eval, study). Formulas: colorjax/losses.py, colorjax/ab_bins.py.

  python launch.py --config=configs/vivid.py --config.data.movie_dir=... --workdir=runs/vivid
  python launch.py --mode=study --config=configs/vivid.py ... --workdir=runs/study_vivid
"""
from configs import default


def get_config():
  config = default.get_config()
  config.name = "vivid"
  config.loss.kind = "classification"
  config.loss.l1_weight = 0.0        # no pull towards the average colour
  config.loss.class_weight = 1.0
  config.loss.colorfulness_weight = 0.0
  # Annealed-mean T: the paper's 0.38 overshoots here (benchmarks/vivid.py, 150 steps: photos
  # 99% of the truth's colourfulness at ΔE00 +11.7% vs the recipe); 0.6 measured 82% at +3.1%.
  # A decoding choice: --config.loss.temperature changes it without retraining.
  config.loss.temperature = 0.6
  return config
