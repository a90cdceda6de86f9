"""The study's cartoon model: the default recipe trained on ("cartoon",)."""
from configs import default


def get_config():
  config = default.get_config()
  config.name = "cartoon"
  config.data.domains = ("cartoon",)
  return config
