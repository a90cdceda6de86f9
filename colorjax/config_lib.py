"""Config checks: every problem is one line naming the option and what is allowed."""
from __future__ import annotations

import jax

MODES = ("train", "eval", "study", "colorize", "serve")


class ConfigError(ValueError):
  """A bad configuration value; the message names the option."""


def finalize(config):
  """Fill derived defaults: `dtype` "" → bfloat16 on GPU/TPU, float32 on CPU; data folders
  made absolute (a run's config.json is read from other directories later)."""
  from colorjax.data import sources
  config = config.copy_and_resolve_references()
  if not config.get("dtype"):
    with config.unlocked():
      config.dtype = "float32" if jax.default_backend() == "cpu" else "bfloat16"
  if "data" in config:
    sources.absolute_folders(config.data)
  return config


def _positive_int(config, key):
  value = config
  for part in key.split("."):
    value = value[part]
  if isinstance(value, bool) or not isinstance(value, int) or value < 1:
    raise ConfigError(f"config.{key}={value!r}: must be a positive integer")


def validate(config) -> None:
  """Raise ConfigError for impossible or conflicting values (before anything is compiled)."""
  from colorjax.models import ENCODER_STAGES
  for key in ("image_size", "batch_size", "num_epochs", "log_every_steps", "disc.width",
              "disc.layers", "model.encoder_width", "data.eval_batch_size"):
    _positive_int(config, key)
  if config.image_size % 32:
    raise ConfigError(f"config.image_size={config.image_size}: must be a multiple of 32 "
                      "(the encoder downsamples 5 times)")
  if config.pretrain_epochs < 0 or config.pretrain_epochs > config.num_epochs:
    raise ConfigError(f"config.pretrain_epochs={config.pretrain_epochs}: must be between 0 and "
                      f"config.num_epochs={config.num_epochs}")
  if config.checkpoint_every_steps < 0:
    raise ConfigError(f"config.checkpoint_every_steps={config.checkpoint_every_steps}: must be >= 0")
  if config.dtype not in ("float32", "bfloat16"):
    raise ConfigError(f"config.dtype={config.dtype!r}: expected float32 or bfloat16")
  if config.model.encoder not in ENCODER_STAGES:
    raise ConfigError(f"config.model.encoder={config.model.encoder!r}: expected one of "
                      f"{', '.join(sorted(ENCODER_STAGES))}")
  if len(config.model.decoder_widths) != 5 or min(config.model.decoder_widths) < 1:
    raise ConfigError(f"config.model.decoder_widths={tuple(config.model.decoder_widths)}: "
                      "expected 5 positive widths")
  if config.disc.layers > 5:
    raise ConfigError(f"config.disc.layers={config.disc.layers}: at most 5")
  for key in ("lr_g", "lr_d"):
    if not config.optim[key] > 0:
      raise ConfigError(f"config.optim.{key}={config.optim[key]}: must be > 0")
  for key in ("b1", "b2"):
    if not 0 <= config.optim[key] < 1:
      raise ConfigError(f"config.optim.{key}={config.optim[key]}: must be in [0, 1)")
  if config.data.on_bad_image not in ("skip", "error"):
    raise ConfigError(f"config.data.on_bad_image={config.data.on_bad_image!r}: "
                      "expected 'skip' or 'error'")
  if not config.data.domains:
    raise ConfigError("config.data.domains is empty: name at least one domain")
  _check_domains(config)
  for key in ("train_size", "test_size", "val_size"):
    value = config.data[key]
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0
        or (value >= 1 and not float(value).is_integer())):
      raise ConfigError(f"config.data.{key}={value!r}: must be a whole count (>= 1), a "
                        "fraction (< 1) or 0")
  for key in ("max_steps_per_epoch", "steps_per_epoch", "seed"):
    if key not in config:    # a config file written before the key existed
      continue
    if isinstance(config[key], bool) or not isinstance(config[key], int) or config[key] < 0:
      raise ConfigError(f"config.{key}={config[key]!r}: must be an integer >= 0")
  _check_loss(config.loss)
  crop_scale = config.data.get("crop_scale", 1.0)
  if isinstance(crop_scale, bool) or not isinstance(crop_scale, (int, float)) \
      or not 0 < crop_scale <= 1:
    raise ConfigError(f"config.data.crop_scale={crop_scale!r}: must be in (0, 1] (the smallest "
                      "training crop as a fraction of the short side)")
  if config.data.workers < 0:
    raise ConfigError(f"config.data.workers={config.data.workers}: must be >= 0")
  n = jax.device_count()
  if config.batch_size % n:
    raise ConfigError(f"config.batch_size={config.batch_size}: must be divisible by the "
                      f"{n} devices")


def _check_loss(loss) -> None:
  """The colour loss options (colorjax/losses.py): a known kind, weights that teach colour."""
  from colorjax import losses
  kind = loss.get("kind", "l1")
  if kind not in losses.KINDS:
    raise ConfigError(f"config.loss.kind={kind!r}: expected one of {', '.join(losses.KINDS)}")
  for key in ("l1_weight", "class_weight", "colorfulness_weight"):
    if key in loss and not (isinstance(loss[key], (int, float)) and loss[key] >= 0):
      raise ConfigError(f"config.loss.{key}={loss[key]!r}: must be a number >= 0")
  for key in ("soft_sigma", "prior_sigma", "temperature"):
    if key in loss and not (isinstance(loss[key], (int, float)) and loss[key] > 0):
      raise ConfigError(f"config.loss.{key}={loss[key]!r}: must be > 0")
  lam = loss.get("rebalance_lambda", 0.5)
  if not (isinstance(lam, (int, float)) and 0 <= lam <= 1):
    raise ConfigError(f"config.loss.rebalance_lambda={lam!r}: must be in [0, 1]")
  if kind == "classification" and not loss.get("class_weight", 1.0) > 0:
    raise ConfigError("config.loss.class_weight=0 with config.loss.kind='classification': the "
                      "classification head learns only from that term; set it > 0")
  if kind == "l1" and not (loss.l1_weight > 0 or loss.get("colorfulness_weight", 0) > 0):
    raise ConfigError("config.loss.l1_weight=0 with config.loss.kind='l1' and no "
                      "colorfulness_weight: nothing but the discriminator teaches colour")


def _check_domains(config) -> None:
  """Known domain names, no repeats, and a folder for each folder domain."""
  from colorjax.data import sources
  domains = list(config.data.domains)
  allowed = (f"{', '.join(sources.FOLDER_DOMAINS)}, {', '.join(sources.BUILTIN_DOMAINS)} "
             "or tfds:NAME[/CONFIG][:SPLIT]")
  for d in domains:
    if not isinstance(d, str) or not (d in sources.FOLDER_DOMAINS or d in sources.BUILTIN_DOMAINS
                                      or (d.startswith("tfds:") and len(d) > 5)):
      raise ConfigError(f"config.data.domains: unknown domain {d!r}; expected {allowed}")
    if d in sources.FOLDER_DOMAINS and not config.data.get(sources.FOLDER_DOMAINS[d]):
      key = sources.FOLDER_DOMAINS[d]
      raise ConfigError(f"config.data.domains includes {d!r} but config.data.{key} is empty: "
                        f"set --config.data.{key}=/path/to/images")
  if len(set(domains)) != len(domains):
    raise ConfigError(f"config.data.domains={tuple(domains)}: a domain is listed twice")
