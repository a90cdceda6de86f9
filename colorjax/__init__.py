"""colorjax: cross-domain GAN colorization of cartoon frames and live-action stills (JAX/Flax)."""


def load(path, step=None, render_size=None):
  """A `colorjax.inference.Colorizer` from a run or checkpoint directory (best checkpoint).

  Imported lazily so that `import colorjax` stays cheap (no JAX until a model is loaded).
  """
  from colorjax.inference import load as _load
  return _load(path, step=step, render_size=render_size)
