"""The study's full recipe: 256 px, batch 16, ResNet34-UNet + 70×70 PatchGAN, L1(λ=100) + GAN.

Train on your own folders:
  python launch.py --config=configs/mixed.py \
      --config.data.cartoon_dir=/data/cartoon --config.data.movie_dir=/data/movie_stills

Pretrained encoder: download torchvision's ImageNet ResNet34 (resnet34-b627a593.pth) yourself,
optionally convert it with `python -m colorjax.convert resnet34.pth resnet34.safetensors`, and
set `--config.model.encoder_weights=/path/resnet34.safetensors` (.pth needs torch installed).
"""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.name = "default"
  config.seed = 0
  config.image_size = 256            # px, square crops; a multiple of 32
  config.batch_size = 16             # global batch, split over all devices
  config.num_epochs = 20
  config.pretrain_epochs = 0         # L1-only generator warm-up epochs before the GAN phase
  config.dtype = ""                  # compute dtype: "" = bfloat16 on GPU/TPU, float32 on CPU
  config.checkpoint_every_steps = 0  # extra mid-epoch checkpoints; 0 = one per epoch only
  config.log_every_steps = 50
  config.debug_nans = False          # jax_debug_nans: locate the op that makes a NaN (slow)
  config.max_steps_per_epoch = 0     # cap on steps per epoch (0 = a full pass); for smoke runs
  config.steps_per_epoch = 0         # steps between validations/checkpoints (0 = one pass over
                                     # the training images); for small data on fast devices

  config.optim = ml_collections.ConfigDict()
  config.optim.lr_g = 2e-4
  config.optim.lr_d = 2e-4
  config.optim.b1 = 0.5
  config.optim.b2 = 0.999

  # How G learns colour (colorjax/losses.py): L_G = BCE(D(L, âb), 1) + L_colour with
  # L_colour = l1_weight·mean|âb − ab| + class_weight·CE_rebalanced + colorfulness_weight·|ΔM|.
  config.loss = ml_collections.ConfigDict()
  config.loss.kind = "l1"            # "l1": the recipe (2-channel tanh head regressing ab/110);
  #   "classification": Zhang et al. 2016, K = 262 logits over the in-gamut a*b* bins of 10
  #   units, decoded by the annealed mean (configs/vivid.py)
  config.loss.l1_weight = 100.0      # λ_L1 on normalised ab (with "classification": on âb)
  config.loss.class_weight = 1.0     # λ_CE: mean_px w_q*·(−Σ_k z_k log p_k), z = 5-NN soft
  #   encoding (σ = soft_sigma), w = class rebalancing; "classification" only
  config.loss.soft_sigma = 5.0       # Gaussian σ (Lab units) of the soft-encoded targets
  config.loss.rebalance_lambda = 0.5  # w ∝ ((1−λ)·p̃ + λ/K)⁻¹, mean 1 under p̃; 1 = no rebalancing
  config.loss.prior_sigma = 5.0      # σ (Lab units) smoothing the training images' bin prior p̃
  config.loss.temperature = 0.38     # annealed mean T: âb = Σ_q c_q softmax(logits/T)_q
  config.loss.colorfulness_weight = 0.0  # λ_M on mean_img |M(pred) − M(truth)| (Hasler–
  #   Süsstrunk colourfulness, 0-255 RGB units, ≈ 0-110), DDColor-style; any kind; 0 = off

  config.model = ml_collections.ConfigDict()
  config.model.encoder = "resnet34"  # resnet34 | resnet18 | resnet10
  config.model.encoder_width = 64
  config.model.decoder_widths = (256, 128, 64, 32, 16)
  config.model.encoder_weights = ""  # torchvision ResNet34 (.pth/.safetensors/.npz) or ""
  config.model.hints = False         # True: G also reads sparse colour hints (configs/hints.py)

  config.disc = ml_collections.ConfigDict()
  config.disc.width = 64
  config.disc.layers = 3

  config.data = ml_collections.ConfigDict()
  # Domains to train on: "cartoon" / "movie" read the folders below; "toon" / "photo" are the
  # built-in generated domains; "tfds:NAME[/CONFIG][:SPLIT]" reads a prepared TFDS dataset.
  config.data.domains = ("cartoon", "movie")
  config.data.cartoon_dir = ""
  config.data.movie_dir = ""
  # Split sizes per domain: a count (>= 1), or a fraction (< 1). Taken in order: test of all
  # the images, validation of the rest, train of what is left then (0 = all of it); so 0.2
  # test, 0.05 val, 0.8 train of 100 images is 20 / 4 / 60. Floats, so that either can be
  # given on the command line (--config.data.test_size=0.2).
  config.data.train_size = 8000.0
  config.data.test_size = 2000.0     # held out for evaluation only
  config.data.val_size = 0.05        # carved out of train for model selection
  config.data.workers = 4            # grain worker processes (0 = in the main process)
  config.data.on_bad_image = "skip"  # skip | error
  # Training crops: a square of side s × the short side, s uniform in [crop_scale, 1], resized
  # to image_size (1 = the recipe: resize the short side, random crop; < 1 zooms in at random,
  # more views of few images).
  config.data.crop_scale = 1.0
  config.data.eval_batch_size = 32
  return config
