"""The study's movie model: the default recipe trained on ("movie",)."""
from configs import default


def get_config():
  config = default.get_config()
  config.name = "movie"
  config.data.domains = ("movie",)
  return config
