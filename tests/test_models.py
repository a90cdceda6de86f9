"""Model architecture: full-size shapes and parameter counts (eval_shape only), tiny forward."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from colorjax.models import Discriminator, Generator, build_models


def n_params(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


@pytest.mark.device
def test_generator_full_size_matches_pytorch_reference():
  g = Generator()   # ResNet34 encoder, decoder 256-128-64-32-16
  L = jax.ShapeDtypeStruct((2, 256, 256, 1), jnp.float32)
  variables = jax.eval_shape(lambda x: g.init(jax.random.key(0), x), L)
  # segmentation_models_pytorch Unet('resnet34', in_channels=1, classes=2) has 24,430,242.
  assert n_params(variables["params"]) == 24_430_242
  out = jax.eval_shape(lambda v, x: g.apply(v, x), variables, L)
  assert out.shape == (2, 256, 256, 2) and out.dtype == jnp.float32
  enc = variables["params"]["encoder"]
  assert enc["conv1"]["kernel"].shape == (7, 7, 1, 64)
  assert sum(k.startswith("layer3_") for k in enc) == 6     # BasicBlocks 3-4-6-3
  assert enc["layer4_2"]["conv2"]["kernel"].shape == (3, 3, 512, 512)


def test_discriminator_is_the_70px_patchgan():
  d = Discriminator()
  L = jax.ShapeDtypeStruct((2, 256, 256, 1), jnp.float32)
  ab = jax.ShapeDtypeStruct((2, 256, 256, 2), jnp.float32)
  variables = jax.eval_shape(lambda a, b: d.init(jax.random.key(0), a, b), L, ab)
  assert n_params(variables["params"]) == 2_765_633
  assert jax.eval_shape(lambda v, a, b: d.apply(v, a, b), variables, L, ab).shape == (2, 30, 30, 1)


@pytest.mark.device
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_tiny_models_run_with_float32_params(tiny_config, dtype):
  tiny_config.dtype = dtype
  g, d = build_models(tiny_config)
  L = jnp.linspace(-1, 1, 2 * 32 * 32).reshape(2, 32, 32, 1)
  gv = g.init(jax.random.key(0), L)
  ab = g.apply(gv, L)
  assert ab.shape == (2, 32, 32, 2) and ab.dtype == jnp.float32
  assert float(jnp.abs(ab).max()) <= 1.0                      # tanh output
  dv = d.init(jax.random.key(1), L, ab)
  logits = d.apply(dv, L, ab)
  assert logits.shape == (2, 2, 2, 1) and logits.dtype == jnp.float32
  for leaf in jax.tree.leaves((gv, dv)):
    assert leaf.dtype == jnp.float32                          # params and BN stats stay f32


def test_pix2pix_initialisation():
  g = Generator(encoder="resnet10", encoder_width=16, decoder_widths=(32, 32, 16, 16, 16))
  v = g.init(jax.random.key(0), jnp.zeros((1, 64, 64, 1)))
  kernel = np.asarray(v["params"]["decoder0"]["conv1"]["kernel"])
  assert abs(kernel.std() - 0.02) < 0.002 and abs(kernel.mean()) < 0.002
  scale = np.asarray(v["params"]["decoder0"]["bn1"]["scale"])
  assert abs(scale.mean() - 1.0) < 0.01 and 0.005 < scale.std() < 0.04


def test_input_size_must_divide_by_32():
  g = Generator(encoder="resnet10", encoder_width=8, decoder_widths=(8,) * 5)
  with pytest.raises(ValueError, match="multiples of 32"):
    g.init(jax.random.key(0), jnp.zeros((1, 48, 48, 1)))


@pytest.mark.parametrize("size, kernel, pad", [(16, 4, 1), (17, 4, 1), (15, 4, 2), (12, 2, 0)])
def test_space_to_depth_conv_equals_the_strided_convolution(size, kernel, pad, monkeypatch):
  """The CPU form of the PatchGAN's stride-2 convolutions: same values and gradients as
  `lax.conv_general_dilated`, also for odd sizes (unread rows cropped) and other paddings."""
  from jax import lax
  from colorjax import xla_flags
  from colorjax.models.layers import space_to_depth_conv
  monkeypatch.setenv("XLA_FLAGS", xla_flags.CPU_CONVOLUTIONS_TO_EIGEN)   # the form follows it
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((2, size, size + 1, 3)), jnp.float32)
  w = jnp.asarray(rng.standard_normal((kernel, kernel, 3, 5)), jnp.float32)
  dn = lax.conv_dimension_numbers(x.shape, w.shape, ("NHWC", "HWIO", "NHWC"))
  padding = ((pad, pad), (pad, pad))

  def loss(conv, x, w):
    y = conv(x, w, (2, 2), padding, dimension_numbers=dn)
    return jnp.sum(jnp.sin(y)), y

  (_, want), want_grads = jax.value_and_grad(
      lambda x, w: loss(lax.conv_general_dilated, x, w), argnums=(0, 1), has_aux=True)(x, w)
  (_, got), got_grads = jax.value_and_grad(
      lambda x, w: loss(space_to_depth_conv, x, w), argnums=(0, 1), has_aux=True)(x, w)
  assert got.shape == want.shape
  jaxpr = str(jax.make_jaxpr(lambda x, w: loss(space_to_depth_conv, x, w))(x, w))
  assert "window_strides=(1, 1)" in jaxpr and "window_strides=(2, 2)" not in jaxpr  # the CPU form
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  for g, r in zip(got_grads, want_grads):
    np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4)


def test_space_to_depth_conv_follows_the_xla_flag(monkeypatch):
  """Without colorjax's CPU flag (YNNPACK convolutions) the plain strided convolution is used."""
  from colorjax.models.layers import space_to_depth_conv
  monkeypatch.setenv("XLA_FLAGS", "")
  x, w = jnp.ones((1, 8, 8, 2)), jnp.ones((4, 4, 2, 3))
  dn = ("NHWC", "HWIO", "NHWC")
  jaxpr = str(jax.make_jaxpr(lambda x, w: space_to_depth_conv(
      x, w, (2, 2), ((1, 1), (1, 1)), dimension_numbers=dn))(x, w))
  assert "window_strides=(2, 2)" in jaxpr


@pytest.mark.device
@pytest.mark.parametrize("shape", [(2, 8, 8, 3), (1, 7, 9, 2), (2, 5, 6, 4), (1, 1, 1, 1)])
def test_stem_max_pool_equals_flax_values_and_gradients(shape):
  """The stem's 3×3/2 pool over strided views: `nn.max_pool`'s values, and its gradient
  to the first maximum of each window, also where windows tie (zeros after ReLU)."""
  import functools
  import flax.linen as nn
  from colorjax.models.layers import max_pool_3x3_s2
  ref = functools.partial(nn.max_pool, window_shape=(3, 3), strides=(2, 2),
                          padding=((1, 1), (1, 1)))
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal(shape), jnp.float32)
  for x in (x, jax.nn.relu(x), jnp.round(x)):          # continuous, then with many ties
    y, vjp = jax.vjp(max_pool_3x3_s2, x)
    want, want_vjp = jax.vjp(ref, x)
    assert y.shape == want.shape and np.array_equal(y, want)
    g = jnp.asarray(rng.standard_normal(y.shape), jnp.float32)
    np.testing.assert_allclose(vjp(g)[0], want_vjp(g)[0], rtol=0, atol=1e-6)


@pytest.mark.device
def test_upsample_gradient_sums_each_block():
  from colorjax.models.layers import upsample2x
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.standard_normal((2, 3, 5, 4)), jnp.float32)
  y, vjp = jax.vjp(upsample2x, x)
  np.testing.assert_array_equal(y, jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2))
  g = jnp.asarray(rng.standard_normal(y.shape), jnp.float32)
  want = g.reshape(2, 3, 2, 5, 2, 4).sum(axis=(2, 4))
  np.testing.assert_allclose(vjp(g)[0], want, rtol=1e-6, atol=1e-6)
