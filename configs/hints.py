"""The full recipe with a hint-conditioned generator (Zhang et al. 2017, user-guided).

G reads L plus a sparse colour-hint map (hint a/110, hint b/110, mask); during training the
hints are simulated from each crop's true colours (`colorjax.hints.simulate_hints`: a
geometric number of points, mean 7, around the centre, 1–9 px patches). Without hints the
model colorizes automatically. Everything else is configs/default.py:
  python launch.py --config=configs/hints.py --config.data.cartoon_dir=... --config.data.movie_dir=...
"""
from configs import default


def get_config():
  config = default.get_config()
  config.name = "hints"
  config.model.hints = True
  return config
