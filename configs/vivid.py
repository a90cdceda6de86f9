"""Vivid colour: the study's recipe with its under-saturation fixed in training.

The generator predicts a distribution over the 262 in-gamut a*b* bins (10-unit grid) and is
trained with Zhang et al. 2016's class-rebalanced cross-entropy on soft-encoded targets
(5 nearest centres, σ = 5; rebalancing λ = 0.5 over the training images' prior smoothed with
σ = 5, computed once per run into WORKDIR/ab_prior.json), plus the PatchGAN loss on the
annealed-mean colours (T = 0.6; the paper's 0.38 is the default). Inference returns the
annealed mean: nothing else changes (colorize, eval, study). Formulas: colorjax/losses.py,
colorjax/ab_bins.py.

Why this variant (benchmarks/vivid.py on ../shared/data, 64 px, README "Vivid colour"): of
the losses measured it came closest to issue 16's goals on both domains. At 600 steps (two
seeds) it matched or beat the recipe's ΔE00 on the Sintel frames (-1.9%, -24.4%) and gave the
photos 91% / 64% of the truth's colourfulness (the recipe 52% / 73%) at ΔE00 +21.6% / +6.1%.
At 300 steps the recipe plus the colourfulness-gap term
(λ_M = 0.1, 0.3, 1) stayed at 59-72% on the photos and cost +5-19% ΔE00 on Sintel; this head
plus L1 (λ = 10) kept the recipe's ΔE00 but fell to 54% on the photos, and with the gap term
as well (λ_M = 0.1) reached 84% but cost +25% on Sintel. On those 6 test photos no run reached
both >= 80% colourfulness and <= +5% ΔE00 (its photo ΔE00 was +4% to +22% above the recipe's;
at the T where it reaches 80%, +16% to +18%). With every image tested once (4 folds) the
24 photos meet both goals for seed 0 (86%, -0.3%) and just miss both for seed 1 (77%, +5.8%);
the 78 Sintel frames miss ΔE00 for both (+21.1%, +18.6%). Without rebalancing
(rebalance_lambda = 1) the photos stay at 57-66% of the truth's colourfulness at every T.
At 1,200 steps (4 folds, seed 0) Sintel is at +16.1% and the photos at 72% (+2.9%); decoding
with the rebalancing partly undone or strengthened (benchmarks/vivid.py --redecode) trades
colour for accuracy along the same line, so the decoding stays as trained.
Other variants stay one override away: --config.loss.kind=l1 --config.loss.l1_weight=100
--config.loss.colorfulness_weight=0.1, or --config.loss.l1_weight=10 on this head.

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
  # Annealed-mean T: the paper's 0.38 overshoots here (benchmarks/vivid.py, 300 steps, two
  # seeds: photos 86-89% of the truth's colourfulness at ΔE00 +18-23% vs the recipe; T = 0.6:
  # 71-78% at +4-9%; 600 steps, T = 0.6: 91% / 64% at +22% / +6%). A decoding choice:
  # --config.loss.temperature changes it without retraining.
  config.loss.temperature = 0.6
  return config
