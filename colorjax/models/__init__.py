"""Models: the ResNet-UNet generator and the PatchGAN discriminator."""
from colorjax.models.discriminator import Discriminator
from colorjax.models.generator import ENCODER_STAGES, Generator

__all__ = ["Discriminator", "ENCODER_STAGES", "Generator", "build_models"]


def build_models(config):
  """(Generator, Discriminator) from a config's `model`, `disc` and `dtype` fields."""
  import jax.numpy as jnp
  dtype = jnp.dtype(config.get("dtype", "float32") or "float32")
  g = Generator(encoder=config.model.encoder, encoder_width=config.model.encoder_width,
                decoder_widths=tuple(config.model.decoder_widths),
                hints=bool(config.model.get("hints", False)), dtype=dtype)
  d = Discriminator(width=config.disc.width, layers=config.disc.layers, dtype=dtype)
  return g, d
