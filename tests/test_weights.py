"""Importing torchvision ResNet weights into the generator's encoder, and colorjax.convert.

The feature-equality tests need torch (an optional, test-only dependency) and skip without it;
the file-format and error tests build torchvision-named state dicts with numpy and always run.
"""
import functools
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from colorjax import convert, state
from colorjax.models import generator, weights
from conftest import ROOT

RESNET34 = (3, 4, 6, 3)
RESNET18 = (2, 2, 2, 2)
RESNET10 = (1, 1, 1, 1)


def numpy_state_dict(stages, width=64, seed=0) -> dict:
  """A random state dict with torchvision's ResNet names and shapes (fc and counters too)."""
  rng = np.random.default_rng(seed)
  sd = {}

  def conv(name, cout, cin, k):
    sd[f"{name}.weight"] = rng.normal(0, (2 / (cin * k * k)) ** 0.5, (cout, cin, k, k))

  def bn(name, c):
    sd[f"{name}.weight"] = rng.uniform(0.5, 1.5, c)
    sd[f"{name}.bias"] = rng.normal(0, 0.1, c)
    sd[f"{name}.running_mean"] = rng.normal(0, 0.1, c)
    sd[f"{name}.running_var"] = rng.uniform(0.5, 2.0, c)
    sd[f"{name}.num_batches_tracked"] = np.array(100, np.int64)

  conv("conv1", width, 3, 7)
  bn("bn1", width)
  cin = width
  for i, blocks in enumerate(stages):
    c = width * 2**i
    for j in range(blocks):
      stride = 2 if i > 0 and j == 0 else 1
      p = f"layer{i + 1}.{j}"
      conv(f"{p}.conv1", c, cin, 3)
      bn(f"{p}.bn1", c)
      conv(f"{p}.conv2", c, c, 3)
      bn(f"{p}.bn2", c)
      if stride != 1 or cin != c:
        conv(f"{p}.downsample.0", c, cin, 1)
        bn(f"{p}.downsample.1", c)
      cin = c
  sd["fc.weight"] = rng.normal(0, 0.01, (1000, cin))
  sd["fc.bias"] = np.zeros(1000)
  return {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in sd.items()}


@functools.lru_cache(maxsize=None)
def encoder_variables(stages, width, size=32):
  """A ResNetEncoder and its variables' shapes, nested as in the Generator (under "encoder").

  Shapes suffice: every encoder variable comes from the file.
  """
  enc = generator.ResNetEncoder(stages, width)
  v = jax.eval_shape(lambda: enc.init(jax.random.key(0), jnp.zeros((1, size, size, 1)),
                                      train=False))
  return enc, {col: {"encoder": tree} for col, tree in v.items()}


def encoder_only(variables):
  return {col: tree["encoder"] for col, tree in variables.items()}


# --- Without torch: formats, mapping, errors ------------------------------------------------


def test_npz_import_maps_names_and_sums_rgb(tmp_path):
  sd = numpy_state_dict(RESNET10, width=8)
  path = str(tmp_path / "r10.npz")
  np.savez(path, **sd)
  _, variables = encoder_variables(RESNET10, 8)
  out = weights.load_encoder_weights(variables, path)
  p, s = out["params"]["encoder"], out["batch_stats"]["encoder"]
  # conv1: OIHW → HWIO, RGB summed into the single L channel.
  want = np.transpose(sd["conv1.weight"].sum(1, keepdims=True), (2, 3, 1, 0))
  np.testing.assert_allclose(p["conv1"]["kernel"], want, rtol=1e-6)
  np.testing.assert_array_equal(p["layer2_0"]["downsample_conv"]["kernel"],
                                np.transpose(sd["layer2.0.downsample.0.weight"], (2, 3, 1, 0)))
  np.testing.assert_array_equal(p["layer4_0"]["bn2"]["scale"], sd["layer4.0.bn2.weight"])
  np.testing.assert_array_equal(p["layer3_0"]["downsample_bn"]["bias"],
                                sd["layer3.0.downsample.1.bias"])
  np.testing.assert_array_equal(s["bn1"]["mean"], sd["bn1.running_mean"])
  np.testing.assert_array_equal(s["layer1_0"]["bn1"]["var"], sd["layer1.0.bn1.running_var"])
  # Every leaf replaced, same shapes, float32.
  for a, b in zip(jax.tree.leaves(variables), jax.tree.leaves(out)):
    assert a.shape == b.shape and b.dtype == np.float32 and isinstance(b, np.ndarray)


def load_file(tmp_path, sd, stages=RESNET10):
  """Saves state dict `sd` as .npz and loads it into a width-8 encoder of `stages`."""
  path = str(tmp_path / "weights.npz")
  np.savez(path, **sd)
  _, variables = encoder_variables(stages, 8)
  return weights.load_encoder_weights(variables, path)


def test_missing_key_is_named(tmp_path):
  sd = numpy_state_dict(RESNET10, width=8)
  del sd["layer3.0.bn2.running_var"]
  with pytest.raises(weights.WeightsError, match=r"missing key 'layer3\.0\.bn2\.running_var'"):
    load_file(tmp_path, sd)


def test_wrong_shape_names_key_and_both_shapes(tmp_path):
  sd = numpy_state_dict(RESNET10, width=8)
  sd["layer2.0.conv1.weight"] = np.zeros((16, 8, 5, 5), np.float32)
  with pytest.raises(weights.WeightsError) as e:
    load_file(tmp_path, sd)
  msg = str(e.value)
  assert "'layer2.0.conv1.weight'" in msg and "(16, 8, 5, 5)" in msg and "(16, 8, 3, 3)" in msg
  assert "\n" not in msg


def test_width_mismatch_names_first_conv(tmp_path):
  with pytest.raises(weights.WeightsError, match=r"'conv1\.weight' has shape \(16, 3, 7, 7\)"):
    load_file(tmp_path, numpy_state_dict(RESNET10, width=16))


def test_deeper_file_than_model_is_rejected(tmp_path):
  with pytest.raises(weights.WeightsError, match=r"'layer1\.1\.conv1\.weight' has no place"):
    load_file(tmp_path, numpy_state_dict(RESNET18, width=8))


def test_resnet18_file_loads_into_resnet18_model(tmp_path):
  sd = numpy_state_dict(RESNET18, width=8)
  out = load_file(tmp_path, sd, RESNET18)
  np.testing.assert_array_equal(out["params"]["encoder"]["layer4_1"]["conv2"]["kernel"],
                                np.transpose(sd["layer4.1.conv2.weight"], (2, 3, 1, 0)))


def test_unreadable_files_give_one_line_errors(tmp_path):
  _, variables = encoder_variables(RESNET10, 8)
  good = str(tmp_path / "good.npz")
  np.savez(good, **numpy_state_dict(RESNET10, width=8))
  data = open(good, "rb").read()
  cases = {"trunc.npz": data[: len(data) // 2], "junk.safetensors": b"\x10\x00" + b"x" * 50,
           "junk.pth": b"not a zip file at all"}
  for name, payload in cases.items():
    path = tmp_path / name
    path.write_bytes(payload)
    if name.endswith(".pth"):
      try:
        import torch  # noqa: F401
      except ImportError:
        continue                     # covered by test_pth_without_torch_says_convert
    with pytest.raises(weights.WeightsError) as e:
      weights.load_encoder_weights(variables, str(path))
    assert str(path) in str(e.value) and "\n" not in str(e.value), str(e.value)
  with pytest.raises(weights.WeightsError, match="no such file"):
    weights.load_encoder_weights(variables, str(tmp_path / "absent.npz"))
  with pytest.raises(weights.WeightsError, match="unknown weights format '.bin'"):
    (tmp_path / "w.bin").write_bytes(b"")
    weights.load_encoder_weights(variables, str(tmp_path / "w.bin"))


def test_pth_without_torch_says_convert(tmp_path, monkeypatch):
  path = tmp_path / "resnet34.pth"
  path.write_bytes(b"whatever")
  monkeypatch.setitem(__import__("sys").modules, "torch", None)   # `import torch` fails
  with pytest.raises(weights.WeightsError, match=r"needs torch; convert it first with "
                     r"`python -m colorjax\.convert .*resnet34\.pth .*resnet34\.safetensors`"):
    weights.read_state_dict(str(path))


def test_init_state_loads_encoder_weights(tmp_path, tiny_config):
  sd = numpy_state_dict(RESNET10, width=8, seed=3)
  path = str(tmp_path / "r10.npz")
  np.savez(path, **sd)
  tiny_config.model.encoder_weights = path
  st = state.init_state(tiny_config, jax.random.key(0))
  kernel = np.asarray(st.g.params["encoder"]["layer3_0"]["conv2"]["kernel"])
  np.testing.assert_array_equal(kernel, np.transpose(sd["layer3.0.conv2.weight"], (2, 3, 1, 0)))
  np.testing.assert_array_equal(st.g.batch_stats["encoder"]["bn1"]["var"], sd["bn1.running_var"])
  # Same tree, shapes and dtypes as the state a checkpoint restores into.
  abstract = state.abstract_state(tiny_config)
  assert jax.tree.structure(st) == jax.tree.structure(abstract)
  for a, b in zip(jax.tree.leaves(st), jax.tree.leaves(abstract)):
    assert a.shape == b.shape and a.dtype == b.dtype


# --- With torch: a torchvision-named reference ResNet -------------------------------------


def torch_resnet(stages, width=64):
  """torchvision's ResNet (BasicBlock) in plain torch.nn, same module names → same keys."""
  torch = pytest.importorskip("torch")
  nn = torch.nn

  if os.path.join(ROOT, "benchmarks") not in sys.path:
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
  from peer_torch import BasicBlock     # the PyTorch peer's block: torchvision's names and math

  class ResNet(nn.Module):
    def __init__(self):
      super().__init__()
      self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
      self.bn1 = nn.BatchNorm2d(width)
      self.relu = nn.ReLU(inplace=True)
      self.maxpool = nn.MaxPool2d(3, 2, 1)
      cin = width
      for i, blocks in enumerate(stages):
        c = width * 2**i
        layer = []
        for j in range(blocks):
          layer.append(BasicBlock(cin, c, 2 if i > 0 and j == 0 else 1))
          cin = c
        setattr(self, f"layer{i + 1}", nn.Sequential(*layer))
      self.avgpool = nn.AdaptiveAvgPool2d(1)
      self.fc = nn.Linear(cin, 1000)

    def features(self, x):
      x = self.relu(self.bn1(self.conv1(x)))
      out = [x]
      x = self.maxpool(x)
      for i in range(len(stages)):
        x = getattr(self, f"layer{i + 1}")(x)
        out.append(x)
      return out

  torch.manual_seed(0)
  model = ResNet()
  with torch.no_grad():   # random BatchNorm affine params and running statistics
    for m in model.modules():
      if isinstance(m, nn.BatchNorm2d):
        m.weight.uniform_(0.5, 1.5)
        m.bias.normal_(0, 0.1)
        m.running_mean.normal_(0, 0.1)
        m.running_var.uniform_(0.5, 2.0)
  return model.eval()


@pytest.fixture(scope="module")
def resnet34_pth(tmp_path_factory):
  torch = pytest.importorskip("torch")
  model = torch_resnet(RESNET34)
  path = str(tmp_path_factory.mktemp("weights") / "resnet34.pth")
  torch.save(model.state_dict(), path)
  return model, path


def test_torch_reference_has_torchvision_names():
  model = torch_resnet(RESNET34)
  assert list(model.state_dict()) == list(numpy_state_dict(RESNET34))
  assert sum(p.numel() for p in model.parameters()) == 21_797_672   # torchvision resnet34


def test_resnet34_features_match_torch_at_every_skip(resnet34_pth, tmp_path):
  torch = pytest.importorskip("torch")
  model, pth = resnet34_pth
  # The same weights through every supported format.
  sft, npz = str(tmp_path / "r34.safetensors"), str(tmp_path / "r34.npz")
  assert convert.main([pth, sft]) == 0 and convert.main([pth, npz]) == 0
  enc, variables = encoder_variables(RESNET34, 64, size=64)
  L = np.random.default_rng(1).uniform(-1, 1, (2, 64, 64, 1)).astype(np.float32)
  with torch.no_grad():
    rgb = torch.from_numpy(np.repeat(L, 3, axis=-1).transpose(0, 3, 1, 2).copy())
    want = [f.numpy().transpose(0, 2, 3, 1) for f in model.features(rgb)]
  apply = jax.jit(lambda v, x: enc.apply(v, x, train=False))
  for path in (pth, sft, npz):
    got = apply(encoder_only(weights.load_encoder_weights(variables, path)), L)
    assert [g.shape for g in got] == [w.shape for w in want]
    for level, (g, w) in enumerate(zip(got, want)):
      err = float(np.max(np.abs(np.asarray(g) - w)))
      assert err < 1e-4, f"{os.path.basename(path)} level {level}: max |Δ| {err:.2e}"
      assert float(np.abs(w).max()) > 0.1        # a real signal, not all zeros


def test_pth_with_arbitrary_objects_is_not_unpickled(tmp_path):
  torch = pytest.importorskip("torch")
  path = str(tmp_path / "evil.pth")
  torch.save({"conv1.weight": torch.zeros(1), "payload": np.random.default_rng(0)}, path)
  with pytest.raises(weights.WeightsError, match="cannot read as a PyTorch state dict"):
    weights.read_state_dict(path)


def test_convert_cli(tmp_path, capsys):
  torch = pytest.importorskip("torch")
  model = torch_resnet(RESNET10, width=8)
  pth = str(tmp_path / "r10.pth")
  torch.save(model.state_dict(), pth)
  dst = str(tmp_path / "out" / "r10.safetensors")
  assert convert.main([pth, dst]) == 0
  assert "wrote" in capsys.readouterr().out
  from safetensors.numpy import load_file
  got = load_file(dst)
  assert set(got) == set(model.state_dict())
  assert got["layer1.0.bn1.running_var"].dtype == np.float32
  np.testing.assert_array_equal(got["conv1.weight"], model.conv1.weight.detach().numpy())
  assert not os.path.exists(dst + ".tmp")
  # Bad arguments: one "error:" line, exit status 2.
  assert convert.main([pth, str(tmp_path / "x.bin")]) == 2
  assert convert.main([str(tmp_path / "absent.pth"), dst]) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 2 and all(line.startswith("error: ") for line in err)
  assert "x.bin" in err[0] and "absent.pth" in err[1]
  assert convert.main([pth]) == 2
