"""Models: the ResNet-UNet generator and the PatchGAN discriminator."""
from colorjax.models.discriminator import Discriminator
from colorjax.models.generator import ENCODER_STAGES, Generator

__all__ = ["Discriminator", "ENCODER_STAGES", "Generator", "build_models", "generator_head"]


def generator_head(config) -> str:
  """The generator head of a config: "bins" (K logits) for `loss.kind="classification"`,
  else "ab" (2 channels, tanh; also for configs written before `loss.kind` existed)."""
  return "bins" if (config.get("loss") or {}).get("kind", "l1") == "classification" else "ab"


def build_models(config):
  """(Generator, Discriminator) from a config's `model`, `disc` and `dtype` fields."""
  import jax.numpy as jnp
  dtype = jnp.dtype(config.get("dtype", "float32") or "float32")
  from colorjax import ab_bins
  temperature = (config.get("loss") or {}).get("temperature", ab_bins.TEMPERATURE)
  g = Generator(encoder=config.model.encoder, encoder_width=config.model.encoder_width,
                decoder_widths=tuple(config.model.decoder_widths),
                hints=bool(config.model.get("hints", False)), dtype=dtype,
                head=generator_head(config), temperature=float(temperature))
  d = Discriminator(width=config.disc.width, layers=config.disc.layers, dtype=dtype)
  return g, d
