"""colorjax.metrics: CIEDE2000 vs scikit-image and the Sharma et al. data, gradients,
and the batch image metrics vs scikit-image / dm_pix / a NumPy transcription."""
import dm_pix
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from skimage import color as skcolor
from skimage import data as skdata
from skimage import metrics as skmetrics
from skimage import transform as sktransform

from colorjax import metrics

# Sharma, Wu & Dalal (2005), Table 1: L1 a1 b1 L2 a2 b2 ΔE00 (all 34 pairs).
SHARMA = np.array([list(map(float, r.split())) for r in """
50.0000 2.6772 -79.7751 50.0000 0.0000 -82.7485 2.0425
50.0000 3.1571 -77.2803 50.0000 0.0000 -82.7485 2.8615
50.0000 2.8361 -74.0200 50.0000 0.0000 -82.7485 3.4412
50.0000 -1.3802 -84.2814 50.0000 0.0000 -82.7485 1.0000
50.0000 -1.1848 -84.8006 50.0000 0.0000 -82.7485 1.0000
50.0000 -0.9009 -85.5211 50.0000 0.0000 -82.7485 1.0000
50.0000 0.0000 0.0000 50.0000 -1.0000 2.0000 2.3669
50.0000 -1.0000 2.0000 50.0000 0.0000 0.0000 2.3669
50.0000 2.4900 -0.0010 50.0000 -2.4900 0.0009 7.1792
50.0000 2.4900 -0.0010 50.0000 -2.4900 0.0010 7.1792
50.0000 2.4900 -0.0010 50.0000 -2.4900 0.0011 7.2195
50.0000 2.4900 -0.0010 50.0000 -2.4900 0.0012 7.2195
50.0000 -0.0010 2.4900 50.0000 0.0009 -2.4900 4.8045
50.0000 -0.0010 2.4900 50.0000 0.0010 -2.4900 4.8045
50.0000 -0.0010 2.4900 50.0000 0.0011 -2.4900 4.7461
50.0000 2.5000 0.0000 50.0000 0.0000 -2.5000 4.3065
50.0000 2.5000 0.0000 73.0000 25.0000 -18.0000 27.1492
50.0000 2.5000 0.0000 61.0000 -5.0000 29.0000 22.8977
50.0000 2.5000 0.0000 56.0000 -27.0000 -3.0000 31.9030
50.0000 2.5000 0.0000 58.0000 24.0000 15.0000 19.4535
50.0000 2.5000 0.0000 50.0000 3.1736 0.5854 1.0000
50.0000 2.5000 0.0000 50.0000 3.2972 0.0000 1.0000
50.0000 2.5000 0.0000 50.0000 1.8634 0.5757 1.0000
50.0000 2.5000 0.0000 50.0000 3.2592 0.3350 1.0000
60.2574 -34.0099 36.2677 60.4626 -34.1751 39.4387 1.2644
63.0109 -31.0961 -5.8663 62.8187 -29.7946 -4.0864 1.2630
61.2901 3.7196 -5.3901 61.4292 2.2480 -4.9620 1.8731
35.0831 -44.1164 3.7933 35.0232 -40.0716 1.5901 1.8645
22.7233 20.0904 -46.6940 23.0331 14.9730 -42.5619 2.0373
36.4612 47.8580 18.3852 36.2715 50.5065 21.2231 1.4146
90.8027 -2.0831 1.4410 91.1528 -1.6435 0.0447 1.4441
90.9257 -0.5406 -0.9208 88.6381 -0.8985 -0.7239 1.5381
6.7747 -0.2908 -2.4247 5.8714 -0.0985 -2.2286 0.6377
2.0776 0.0795 -1.1350 0.9033 -0.0636 -0.5514 0.9082
""".strip().splitlines()])

_f64 = lambda: jax.enable_x64(True)
_de = jax.jit(metrics.ciede2000)


def _random_lab(rng, n):
  return np.stack([rng.uniform(0, 100, n), rng.uniform(-128, 128, n), rng.uniform(-128, 128, n)],
                  -1)


def _polar(L, C, h_deg):
  h = np.deg2rad(h_deg)
  return np.stack(np.broadcast_arrays(L, C * np.cos(h), C * np.sin(h)), -1).astype(float)


def _corner_cases():
  """(lab1, lab2) pairs exercising every branch of the formula."""
  rng = np.random.default_rng(7)
  pairs = []
  lab = _random_lab(rng, 50)
  pairs.append((lab, lab))                                         # identical
  greys = np.stack([np.linspace(0, 100, 11), np.zeros(11), np.zeros(11)], -1)
  pairs.append((greys, greys[::-1]))                               # neutral vs neutral
  pairs.append((greys, _random_lab(rng, 11)))                      # neutral vs chromatic
  pairs.append((_random_lab(rng, 11), greys))
  for L in (0.0, 30.0, 50.0, 75.0, 100.0):
    for c1 in (1e-8, 0.5, 2.5, 25.0, 80.0):
      for c2 in (1e-8, 0.5, 25.0, 100.0):
        for s in (1.0, -1.0):
          pairs.append((np.array([[L, c1, 0.0]]), np.array([[L + 3, s * c2, 0.0]])))   # a axis
          pairs.append((np.array([[L, 0.0, c1]]), np.array([[L - 3, 0.0, s * c2]])))   # b axis
          pairs.append((np.array([[L, s * c1, 0.0]]), np.array([[L, 0.0, c2]])))       # a vs b
  tiny = np.array([[50, 1e-8, 0], [50, 0, 1e-8], [50, -1e-8, 1e-8], [50, 1e-8, -1e-8]], float)
  pairs.append((tiny, tiny[::-1]))                                 # very small chroma
  pairs.append((tiny, _random_lab(rng, 4)))
  # Hue differences of 179.9° and 180.1° around many base hues and chromas.
  # (Base hues avoid h1' + h2' = 360° exactly: there the mean hue is 0° or ~360°
  # depending on the last bit of the inputs, and Δθ jumps by ~3e-4°.)
  base = np.arange(1.3, 360.0, 7.5)
  for dh in (179.9, 180.1, -179.9, -180.1, 90.0, 270.0, 0.1, 359.9):
    for c1, c2 in ((10.0, 10.0), (3.0, 60.0), (80.0, 20.0)):
      pairs.append((_polar(55.0, c1, base), _polar(48.0, c2, base + dh)))
  # Exactly 180° apart on the axes (0°/180°, 90°/270°), where skimage's atan2
  # arithmetic is exact too.
  for c1, c2 in ((10.0, 10.0), (3.0, 60.0), (80.0, 20.0)):
    pairs.append((np.array([[50, c1, 0], [50, -c1, 0], [50, 0, c1], [50, 0, -c1]], float),
                  np.array([[60, -c2, 0], [60, c2, 0], [60, 0, -c2], [60, 0, c2]], float)))
  lab1 = np.concatenate([p[0] for p in pairs])
  lab2 = np.concatenate([p[1] for p in pairs])
  return lab1, lab2


@pytest.mark.device
def test_sharma_reference_data():
  with _f64():
    out = np.asarray(_de(SHARMA[:, :3], SHARMA[:, 3:6]))
    back = np.asarray(_de(SHARMA[:, 3:6], SHARMA[:, :3]))
  np.testing.assert_allclose(out, SHARMA[:, 6], atol=5e-5)         # table has 4 decimals
  np.testing.assert_allclose(back, SHARMA[:, 6], atol=5e-5)
  out32 = np.asarray(_de(SHARMA[:, :3].astype(np.float32), SHARMA[:, 3:6].astype(np.float32)))
  np.testing.assert_allclose(out32, SHARMA[:, 6], atol=2e-4)


def test_matches_skimage_float64_random_and_corners():
  rng = np.random.default_rng(0)
  c1, c2 = _corner_cases()
  lab1 = np.concatenate([_random_lab(rng, 100_000), c1])
  lab2 = np.concatenate([_random_lab(rng, 100_000), c2])
  ref = skcolor.deltaE_ciede2000(lab1, lab2)
  with _f64():
    out = _de(jnp.asarray(lab1), jnp.asarray(lab2))
    assert out.dtype == jnp.float64
    out = np.asarray(out)
  assert np.abs(out - ref).max() <= 1e-6
  corners = slice(100_000, None)
  assert np.abs(out[corners] - ref[corners]).max() <= 1e-9


@pytest.mark.device
def test_matches_skimage_float32():
  rng = np.random.default_rng(1)
  c1, c2 = _corner_cases()
  lab1 = np.concatenate([_random_lab(rng, 100_000), c1]).astype(np.float32)
  lab2 = np.concatenate([_random_lab(rng, 100_000), c2]).astype(np.float32)
  out = _de(lab1, lab2)
  assert out.dtype == jnp.float32
  ref = skcolor.deltaE_ciede2000(lab1.astype(np.float64), lab2.astype(np.float64))
  assert np.abs(np.asarray(out) - ref).max() <= 1e-3


def test_exactly_opposite_hues_follow_the_paper():
  """Generic pairs exactly 180° apart (u2 = -u1).  The paper treats |Δh'| = 180° as
  'not far'; skimage decides from rounded atan2 values.  Where skimage's own hue
  difference is exactly ±π it follows the paper, and there we must agree."""
  rng = np.random.default_rng(3)
  n = 2000
  a, b = rng.uniform(-100, 100, n), rng.uniform(-100, 100, n)
  lab1 = np.stack([rng.uniform(0, 100, n), a, b], -1)
  lab2 = np.stack([rng.uniform(0, 100, n), -a, -b], -1)
  # skimage's own hue angles (same operations as deltaE_ciede2000).
  c = np.hypot(a, b)
  scale = 1 + 0.5 * (1 - np.sqrt(c**7 / (c**7 + 25**7)))
  h1 = np.arctan2(b, a * scale)
  h2 = np.arctan2(-b, -a * scale)
  h1, h2 = h1 + np.where(h1 < 0, 2 * np.pi, 0), h2 + np.where(h2 < 0, 2 * np.pi, 0)
  exact = np.abs(h2 - h1) == np.pi
  assert exact.sum() > 100
  ref = skcolor.deltaE_ciede2000(lab1[exact], lab2[exact])
  with _f64():
    out = np.asarray(_de(lab1[exact], lab2[exact]))
  np.testing.assert_allclose(out, ref, rtol=0, atol=1e-9)


def test_symmetric_and_zero_on_identical():
  rng = np.random.default_rng(4)
  c1, c2 = _corner_cases()
  lab1 = np.concatenate([_random_lab(rng, 5000), c1]).astype(np.float32)
  lab2 = np.concatenate([_random_lab(rng, 5000), c2]).astype(np.float32)
  np.testing.assert_allclose(np.asarray(_de(lab1, lab2)), np.asarray(_de(lab2, lab1)),
                             rtol=1e-6, atol=1e-5)
  assert np.all(np.asarray(_de(lab1, lab1)) == 0)
  with _f64():
    l1, l2 = lab1.astype(np.float64), lab2.astype(np.float64)
    np.testing.assert_allclose(np.asarray(_de(l1, l2)), np.asarray(_de(l2, l1)), rtol=1e-12,
                               atol=1e-12)
    assert np.all(np.asarray(_de(l1, l1)) == 0)


def test_shapes_dtypes_vmap():
  rng = np.random.default_rng(5)
  lab1 = _random_lab(rng, 2 * 3 * 5).reshape(2, 3, 5, 3).astype(np.float32)
  lab2 = _random_lab(rng, 2 * 3 * 5).reshape(2, 3, 5, 3).astype(np.float32)
  out = _de(lab1, lab2)
  assert out.shape == (2, 3, 5) and out.dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(jax.jit(jax.vmap(metrics.ciede2000))(lab1, lab2)), out,
                             rtol=1e-6)
  np.testing.assert_allclose(np.asarray(_de(lab1[0, 0, 0], lab2[0, 0, 0])), out[0, 0, 0],
                             rtol=1e-6)
  np.testing.assert_allclose(np.asarray(_de(lab1, lab2[0, 0, :1])),     # broadcasting
                             np.asarray(_de(lab1, np.broadcast_to(lab2[0, 0, :1], lab1.shape))))
  # The fast forward pass (Newton rsqrt, plain sqrt) == the differentiable formula.
  big1, big2 = (_random_lab(rng, 50_000).astype(np.float32) for _ in range(2))
  exact = jax.jit(metrics._ciede2000_parts)(*big1.T, *big2.T)
  np.testing.assert_allclose(np.asarray(_de(big1, big2)), np.asarray(exact), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("x64", [False, True])
def test_newton_rsqrt_within_two_ulp(x64):
  rng = np.random.default_rng(9)
  dt = np.float64 if x64 else np.float32
  fi = np.finfo(dt)
  exps = np.log10([2 * float(fi.tiny), float(fi.max)])
  x = np.concatenate([10.0 ** rng.uniform(*exps, 200_000),
                      [2 * fi.tiny, fi.max, 1.0, 0.25, 4.0]]).astype(dt)
  with jax.enable_x64(x64):
    y = np.asarray(jax.jit(metrics._rsqrt_newton)(jnp.asarray(x)))
  assert y.dtype == dt
  ref = 1.0 / np.sqrt(x.astype(np.longdouble))
  assert np.max(np.abs((y - ref) / ref)) <= 2 * fi.eps           # measured: 1.1 eps


def test_ciede2000_is_one_loop_fusion_on_cpu():
  """Its speed on CPU rests on XLA fusing the whole formula into one loop (no
  intermediate arrays, all cores): any sqrt or divide whose value has several users
  splits it (see metrics._rsqrt_newton).  This guards that against edits."""
  if jax.default_backend() != "cpu":
    pytest.skip("CPU compilation")
  x = jnp.zeros((4096, 3), jnp.float32)
  hlo = jax.jit(metrics.ciede2000).lower(x, x).compile().as_text()
  entry = hlo[hlo.index("\nENTRY"):]
  assert entry.count(" fusion(") == 1, entry


@pytest.mark.device
@pytest.mark.parametrize("x64", [False, True])
def test_gradients_finite_at_corner_cases(x64):
  c1, c2 = _corner_cases()       # (ΔE00 is symmetric: the grads wrt lab2 cover swapped pairs)
  same = c1
  l1, l2 = c1, c2
  with jax.enable_x64(x64):
    dt = jnp.float64 if x64 else jnp.float32
    grad = jax.jit(jax.grad(lambda x, y: metrics.ciede2000(x, y).sum(), argnums=(0, 1)))
    g1, g2 = grad(jnp.asarray(l1, dt), jnp.asarray(l2, dt))
    assert np.isfinite(np.asarray(g1)).all() and np.isfinite(np.asarray(g2)).all()
    # the same array as both arguments
    g = jax.jit(jax.grad(lambda x: metrics.ciede2000(x, x).sum()))(jnp.asarray(same, dt))
    assert np.isfinite(np.asarray(g)).all() and np.all(np.asarray(g) == 0)


def test_gradient_matches_finite_differences():
  rng = np.random.default_rng(6)
  with _f64():
    lab1 = jnp.asarray(_random_lab(rng, 64))
    lab2 = jnp.asarray(_random_lab(rng, 64))
    f = jax.jit(lambda x, y: jnp.sum(metrics.ciede2000(x, y)))
    check_grads(f, (lab1, lab2), order=1, modes=["rev"], atol=1e-5, rtol=1e-5)
    near = lab1 + jnp.asarray(rng.normal(0, 0.5, (64, 3)))     # small differences
    check_grads(f, (lab1, near), order=1, modes=["rev"], atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------------- image metrics

def _images():
  rng = np.random.default_rng(8)
  astro = sktransform.resize(skdata.astronaut(), (96, 96), anti_aliasing=True)
  chelsea = sktransform.resize(skdata.chelsea(), (96, 96), anti_aliasing=True)
  true = np.stack([astro, chelsea, rng.random((96, 96, 3)), np.full((96, 96, 3), 0.5),
                   astro[::-1]])
  noise = rng.normal(0, 0.05, true.shape)
  pred = np.clip(true + noise, 0, 1)
  pred[1] = chelsea.mean(-1, keepdims=True)              # greyscale "prediction"
  pred[3] = rng.random((96, 96, 3))
  return pred.astype(np.float32), true.astype(np.float32)


SK_SSIM = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0,
               channel_axis=-1)


@pytest.mark.device
def test_ssim_matches_skimage_and_dm_pix():
  pred, true = _images()        # N = 5: exercises the padded block path on CPU
  out = np.asarray(jax.jit(metrics.ssim)(pred, true))
  ref = [skmetrics.structural_similarity(true[i].astype(np.float64), pred[i].astype(np.float64),
                                         **SK_SSIM) for i in range(len(pred))]
  np.testing.assert_allclose(out, ref, rtol=0, atol=1e-4)
  np.testing.assert_allclose(out, np.asarray(jax.jit(dm_pix.ssim)(pred, true)), rtol=0,
                             atol=2e-6)
  np.testing.assert_allclose(np.asarray(jax.jit(metrics.ssim)(true, true)), 1.0, atol=1e-6)


def test_psnr_matches_skimage():
  pred, true = _images()
  out = np.asarray(jax.jit(metrics.psnr)(pred, true))
  ref = [skmetrics.peak_signal_noise_ratio(true[i].astype(np.float64),
                                           pred[i].astype(np.float64), data_range=1.0)
         for i in range(len(pred))]
  np.testing.assert_allclose(out, ref, rtol=0, atol=1e-4)


def _colorfulness_np(rgb):
  rgb = rgb.astype(np.float64) * 255.0
  R, G, B = rgb[..., 0], rgb[..., 1], rgb[..., 2]
  rg, yb = R - G, 0.5 * (R + G) - B
  rg, yb = rg.reshape(len(rgb), -1), yb.reshape(len(rgb), -1)
  return (np.sqrt(rg.std(1) ** 2 + yb.std(1) ** 2)
          + 0.3 * np.sqrt(rg.mean(1) ** 2 + yb.mean(1) ** 2))


def test_colorfulness_matches_numpy():
  pred, true = _images()
  for x in (pred, true):
    np.testing.assert_allclose(np.asarray(jax.jit(metrics.colorfulness)(x)),
                               _colorfulness_np(x), rtol=1e-5, atol=1e-3)
  assert float(jax.jit(metrics.colorfulness)(np.full((1, 8, 8, 3), 0.3, np.float32))[0]) < 1e-3


@pytest.mark.device
def test_delta_e_matches_skimage():
  pred, true = _images()
  out = np.asarray(jax.jit(metrics.delta_e)(pred, true))
  ref = [skcolor.deltaE_ciede2000(skcolor.rgb2lab(true[i].astype(np.float64)),
                                  skcolor.rgb2lab(pred[i].astype(np.float64))).mean()
         for i in range(len(pred))]
  np.testing.assert_allclose(out, ref, rtol=0, atol=1e-3)
  assert np.all(np.asarray(jax.jit(metrics.delta_e)(true, true)) == 0)


@pytest.mark.device
def test_image_metrics_dict():
  pred, true = _images()
  out = metrics.image_metrics(pred, true)
  assert set(out) == {"delta_e", "ssim", "psnr", "colorfulness_pred", "colorfulness_true"}
  for v in out.values():
    assert v.shape == (len(pred),)
  for key, fn, args in (("delta_e", metrics.delta_e, (pred, true)),
                        ("ssim", metrics.ssim, (pred, true)),
                        ("psnr", metrics.psnr, (pred, true)),
                        ("colorfulness_pred", metrics.colorfulness, (pred,)),
                        ("colorfulness_true", metrics.colorfulness, (true,))):
    np.testing.assert_allclose(out[key], jax.jit(fn)(*args), rtol=1e-5)
