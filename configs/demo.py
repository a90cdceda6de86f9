"""A CPU-sized demo on the built-in data (toon frames vs photo crops); no download needed.

Small images and a narrow ResNet18-UNet so that training and evaluation of one model take a
few minutes on 2 CPU cores. The study mode trains toon-only, photo-only and mixed models.
"""
from configs import default


def get_config():
  config = default.get_config()
  config.name = "demo"
  config.image_size = 64
  config.batch_size = 16
  config.num_epochs = 4
  config.pretrain_epochs = 1
  config.log_every_steps = 10
  config.model.encoder = "resnet18"
  config.model.encoder_width = 16
  config.model.decoder_widths = (64, 32, 16, 16, 8)
  config.model.hints = True          # hint-conditioned: also works without hints
  config.disc.width = 16
  config.data.domains = ("toon", "photo")
  config.data.train_size = 640
  config.data.test_size = 64
  config.data.val_size = 64
  config.data.workers = 0
  return config
