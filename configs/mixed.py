"""The study's mixed model: the default recipe trained on ("cartoon", "movie")."""
from configs import default


def get_config():
  config = default.get_config()
  config.name = "mixed"
  config.data.domains = ("cartoon", "movie")
  return config
