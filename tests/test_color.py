"""colorjax.color: parity with scikit-image, NumPy/JAX dispatch, dtypes, jit, grads."""
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage import color as skcolor

from colorjax import color

EDGE_RGB = np.array([
    [0, 0, 0], [1, 1, 1], [0.5, 0.5, 0.5], [0.04045, 0.04045, 0.04045], [0.04, 0.05, 0.03],
    [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1],
], dtype=np.float64)


def _random_rgb(n=20_000, seed=0):
  return np.random.default_rng(seed).random((n, 3))


def _sk_lab2rgb(lab):
  with warnings.catch_warnings():          # "negative Z values clipped" warning
    warnings.simplefilter("ignore")
    return skcolor.lab2rgb(lab)


@pytest.mark.parametrize("dtype,atol", [(np.float64, 1e-10), (np.float32, 2e-4)])
def test_rgb_to_lab_matches_skimage_numpy(dtype, atol):
  rgb = np.concatenate([EDGE_RGB, _random_rgb()]).astype(dtype)
  out = color.rgb_to_lab(rgb)
  assert isinstance(out, np.ndarray) and out.dtype == dtype
  np.testing.assert_allclose(out, skcolor.rgb2lab(rgb.astype(np.float64)), rtol=0, atol=atol)


def test_rgb_to_lab_matches_skimage_jax_jit():
  rgb = np.concatenate([EDGE_RGB, _random_rgb(19_998)]).reshape(-1, 11, 3)  # any leading shape
  out = jax.jit(color.rgb_to_lab)(jnp.asarray(rgb, jnp.float32))
  assert isinstance(out, jax.Array) and out.dtype == jnp.float32 and out.shape == rgb.shape
  # float32 L in [0, 100]: ~1e-5 relative rounding.
  np.testing.assert_allclose(np.asarray(out), skcolor.rgb2lab(rgb), rtol=0, atol=2e-4)
  with jax.enable_x64(True):
    out64 = jax.jit(color.rgb_to_lab)(jnp.asarray(rgb))
    assert out64.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(out64), skcolor.rgb2lab(rgb), rtol=0, atol=1e-10)


def test_edge_colours_exact_values():
  lab = color.rgb_to_lab(EDGE_RGB[:2])
  np.testing.assert_allclose(lab[0], [0, 0, 0], atol=1e-12)
  # D65 white: L = 100; a, b ~ 0 up to the (skimage) matrix/white-point mismatch.
  np.testing.assert_allclose(lab[1], [100, 0, 0], atol=1e-2)
  np.testing.assert_allclose(lab[1, 0], 100, atol=1e-4)


def _lab_samples(seed=1, n=20_000):
  rng = np.random.default_rng(seed)
  lab = np.stack([rng.uniform(0, 100, n), rng.uniform(-128, 127, n), rng.uniform(-128, 127, n)],
                 -1)
  out_of_gamut = np.array([[50, 120, -120], [50, -120, 120], [0, 100, 100], [100, 0, 0],
                           [100, -128, -128], [0, 0, 0], [10, 0, -200], [95, 127, 127]], float)
  return np.concatenate([out_of_gamut, lab])


@pytest.mark.parametrize("dtype,atol", [(np.float64, 1e-10), (np.float32, 1e-5)])
def test_lab_to_rgb_matches_skimage_including_out_of_gamut(dtype, atol):
  lab = _lab_samples().astype(dtype)
  ref = _sk_lab2rgb(lab.astype(np.float64))
  out = color.lab_to_rgb(lab)
  assert isinstance(out, np.ndarray) and out.dtype == dtype
  np.testing.assert_allclose(out, ref, rtol=0, atol=atol)
  assert out.min() >= 0 and out.max() <= 1
  outj = jax.jit(color.lab_to_rgb)(jnp.asarray(lab))
  assert isinstance(outj, jax.Array) and outj.dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(outj), ref, rtol=0, atol=1e-5)


def test_out_of_gamut_example():
  out = color.lab_to_rgb(np.array([50.0, 120.0, -120.0]))
  np.testing.assert_allclose(out, _sk_lab2rgb(np.array([[50.0, 120.0, -120.0]]))[0], atol=1e-12)
  assert out[1] == 0.0 and out[2] == 1.0   # clipped channels


# Not exact even in float64: skimage's constants (7.787, 0.2068966, 0.008856) make
# the forward and inverse Lab curves differ by ~3e-8.
@pytest.mark.parametrize("dtype,atol", [(np.float64, 1e-6), (np.float32, 1e-5)])
def test_round_trip(dtype, atol):
  rgb = np.concatenate([EDGE_RGB, _random_rgb(5000, seed=3)]).astype(dtype)
  np.testing.assert_allclose(color.lab_to_rgb(color.rgb_to_lab(rgb)), rgb, atol=atol)
  back = jax.jit(lambda x: color.lab_to_rgb(color.rgb_to_lab(x)))(jnp.asarray(rgb))
  np.testing.assert_allclose(np.asarray(back), rgb.astype(np.float32), atol=1e-5)


def test_numpy_path_creates_no_jax_arrays(monkeypatch):
  """The grain workers must not touch JAX: NumPy in -> pure NumPy computation."""
  def boom(*a, **k):
    raise AssertionError("jax.numpy used on the NumPy path")
  for name in ("asarray", "where", "stack", "exp", "log", "clip", "maximum", "array"):
    monkeypatch.setattr(jnp, name, boom)
  rgb = _random_rgb(10)
  lab = color.rgb_to_lab(rgb)
  back = color.lab_to_rgb(lab)
  L, ab = color.rgb_to_model_inputs(rgb.astype(np.float32))
  out = color.model_outputs_to_rgb(L, ab)
  for x in (lab, back, L, ab, out):
    assert type(x) is np.ndarray


def test_integer_input_becomes_float32():
  lab = color.rgb_to_lab(np.array([[0, 0, 0], [1, 1, 1]], np.uint8))
  assert lab.dtype == np.float32
  assert color.lab_to_rgb(np.array([[50, 0, 0]], np.int32)).dtype == np.float32


def test_normalisation_ranges_and_inverse():
  assert color.normalize_l(np.array(0.0)) == -1 and color.normalize_l(np.array(100.0)) == 1
  assert color.normalize_ab(np.array(110.0)) == 1
  x = np.linspace(-1, 1, 7)
  np.testing.assert_allclose(color.normalize_l(color.denormalize_l(x)), x)
  np.testing.assert_allclose(color.normalize_ab(color.denormalize_ab(x)), x)


def test_model_inputs_outputs_round_trip():
  rgb = _random_rgb(4 * 8 * 8, seed=5).reshape(4, 8, 8, 3).astype(np.float32)
  L, ab = color.rgb_to_model_inputs(rgb)
  assert L.shape == (4, 8, 8, 1) and ab.shape == (4, 8, 8, 2)
  assert L.min() >= -1 and L.max() <= 1 and np.abs(ab).max() <= 1
  np.testing.assert_allclose(color.model_outputs_to_rgb(L, ab), rgb, atol=1e-5)
  Lj, abj = jax.jit(color.rgb_to_model_inputs)(jnp.asarray(rgb))
  out = jax.jit(color.model_outputs_to_rgb)(Lj, abj)
  assert isinstance(out, jax.Array)
  np.testing.assert_allclose(np.asarray(out), rgb, atol=1e-5)


def test_gradients_finite():
  rgb = jnp.asarray(np.concatenate([EDGE_RGB, _random_rgb(50)]), jnp.float32)
  g = jax.grad(lambda x: color.rgb_to_lab(x).sum())(rgb)
  assert np.isfinite(np.asarray(g)).all()
  lab = jnp.asarray(_lab_samples(n=50), jnp.float32)
  g = jax.grad(lambda x: color.lab_to_rgb(x).sum())(lab)
  assert np.isfinite(np.asarray(g)).all()
