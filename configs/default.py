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

  config.loss = ml_collections.ConfigDict()
  config.loss.l1_weight = 100.0      # λ in L_G = BCE(D(L, G(L)), 1) + λ·|G(L) − ab|₁

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
  # Split sizes per domain: a count (>= 1), or a fraction (< 1) of the images. Floats, so that
  # either can be given on the command line (--config.data.test_size=0.2).
  config.data.train_size = 8000.0
  config.data.test_size = 2000.0     # held out for evaluation only
  config.data.val_size = 0.05        # carved out of train for model selection
  config.data.workers = 4            # grain worker processes (0 = in the main process)
  config.data.on_bad_image = "skip"  # skip | error
  config.data.eval_batch_size = 32
  return config
