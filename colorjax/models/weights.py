"""Import a torchvision ResNet state dict (ImageNet weights) into the generator's encoder.

The file is a torchvision `resnet34` (or, for `model.encoder="resnet18"`, `resnet18`) state
dict: a `.pth` saved by `torch.save` (read with `torch.load(weights_only=True)`, so nothing
but tensors is ever unpickled; needs torch), or a `.safetensors` / `.npz` export of it (no
torch needed; see `python -m colorjax.convert`). Names map one to one:

  conv1.weight                      → encoder/conv1/kernel   (OIHW → HWIO)
  bn1.{weight,bias}                 → encoder/bn1/{scale,bias}
  bn1.{running_mean,running_var}    → batch_stats encoder/bn1/{mean,var}
  layer{i}.{j}.{conv1,bn1,conv2,bn2} → encoder/layer{i}_{j}/{conv1,bn1,conv2,bn2}
  layer{i}.{j}.downsample.{0,1}     → encoder/layer{i}_{j}/{downsample_conv,downsample_bn}

`fc.*` (the classifier) and `num_batches_tracked` are ignored. The first convolution's RGB
kernels are summed into the single L channel, so an L image gives the features that the RGB
network computes for the grey image (R = G = B = L). A hint model's stem has 3 more input
channels (hint a, b, mask); their kernels start at zero.
"""
from __future__ import annotations

import os
import re
from typing import Any

import numpy as np

from colorjax.config_lib import ConfigError

# Flax BatchNorm names ↔ torch BatchNorm names.
_BN_PARAMS = {"scale": "weight", "bias": "bias"}
_BN_STATS = {"mean": "running_mean", "var": "running_var"}
_IGNORED = re.compile(r"^fc\.|(^|\.)num_batches_tracked$")
HINT_STEM_CHANNELS = 4   # a hint model's stem input: L, hint a, hint b, hint mask


class WeightsError(ConfigError):
  """An encoder weights file that cannot be used; str(e) names the file and the problem."""


def read_state_dict(path: str) -> dict[str, np.ndarray]:
  """Tensors of a `.pth` / `.pt`, `.safetensors` or `.npz` state dict, as numpy arrays."""
  if not os.path.isfile(path):
    raise WeightsError(f"{path}: no such file (model.encoder_weights)")
  ext = os.path.splitext(path)[1].lower()
  if ext in (".pth", ".pt"):
    return _read_torch(path)
  if ext == ".safetensors":
    return _read_safetensors(path)
  if ext == ".npz":
    return _read_npz(path)
  raise WeightsError(f"{path}: unknown weights format {ext or '(no extension)'!r}; "
                     "expected .pth, .pt, .safetensors or .npz")


def _first_line(e: BaseException) -> str:
  text = str(e).strip().splitlines()
  return f"{type(e).__name__}: {text[0] if text else ''}"


def _read_torch(path: str) -> dict[str, np.ndarray]:
  try:
    import torch
  except ImportError:
    raise WeightsError(
        f"{path}: reading a .pth file needs torch; convert it first with "
        f"`python -m colorjax.convert {path} {os.path.splitext(path)[0]}.safetensors` on a "
        "machine with torch, or `pip install torch`") from None
  try:
    obj = torch.load(path, map_location="cpu", weights_only=True)
  except Exception as e:  # torch raises many types: truncated zip, unsafe pickle, ...
    raise WeightsError(f"{path}: cannot read as a PyTorch state dict ({_first_line(e)})") from None
  # Training checkpoints often wrap the state dict.
  if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
    obj = obj["state_dict"]
  if not isinstance(obj, dict):
    raise WeightsError(f"{path}: holds a {type(obj).__name__}, not a state dict "
                       "(a dict of name → tensor)")
  out = {}
  for name, value in obj.items():
    if not isinstance(value, torch.Tensor):
      raise WeightsError(f"{path}: entry {name!r} is a {type(value).__name__}, not a tensor")
    value = value.detach().cpu()
    out[name] = (value.float() if value.is_floating_point() else value).numpy()
  return out


def _read_safetensors(path: str) -> dict[str, np.ndarray]:
  try:
    from safetensors.numpy import load_file
  except ImportError:
    raise WeightsError(f"{path}: reading .safetensors needs the safetensors package "
                       "(pip install safetensors), or convert it to .npz") from None
  try:
    return load_file(path)
  except Exception as e:  # SafetensorError (truncated/corrupt header), bad dtype, ...
    raise WeightsError(f"{path}: cannot read as safetensors ({_first_line(e)})") from None


def _read_npz(path: str) -> dict[str, np.ndarray]:
  try:
    with np.load(path, allow_pickle=False) as f:
      return {name: f[name] for name in f.files}
  except Exception as e:  # BadZipFile, pickled object arrays, truncated members, ...
    raise WeightsError(f"{path}: cannot read as .npz ({_first_line(e)})") from None


def _torch_module(flax_name: str) -> str:
  """Flax encoder module name → torchvision module prefix (e.g. layer2_0/downsample_bn →
  layer2.0.downsample.1)."""
  parts = flax_name.split("/")
  if len(parts) == 1:
    return parts[0]
  block, layer = parts
  stage, index = block.split("_")
  layer = {"downsample_conv": "downsample.0", "downsample_bn": "downsample.1"}.get(layer, layer)
  return f"{stage}.{index}.{layer}"


_LAYER_ORDER = ("conv1", "bn1", "conv2", "bn2", "downsample_conv", "downsample_bn")


def _order(name: str) -> tuple:
  """Sort key giving torchvision's module order (stem, layer1.0, …); dict order is not kept
  by jax (pytrees sort their keys)."""
  parts = name.split("/")
  if len(parts) == 1:
    return (0, 0, 0, _LAYER_ORDER.index(parts[0]) if parts[0] in _LAYER_ORDER else 99, name)
  block, layer = parts
  stage, index = block[len("layer"):].split("_")
  return (1, int(stage), int(index), _LAYER_ORDER.index(layer) if layer in _LAYER_ORDER else 99,
          name)


def _modules(tree: dict, prefix: str = "") -> list[tuple[str, dict]]:
  """(name, leaves) of every leaf module of an encoder param tree, in torchvision order."""
  found = []
  for key, value in tree.items():
    name = f"{prefix}/{key}" if prefix else key
    if any(isinstance(v, dict) for v in value.values()):
      found.extend(_modules(value, name))
    else:
      found.append((name, value))
  return sorted(found, key=lambda m: _order(m[0])) if not prefix else found


def _shape(a) -> tuple:
  """Shape of an array or of a jax.ShapeDtypeStruct (abstract variables work too)."""
  return tuple(int(d) for d in (a.shape if hasattr(a, "shape") else np.shape(a)))


def _take(sd: dict, key: str, want: tuple, path: str, want_text: str = "") -> np.ndarray:
  """`sd[key]` as float32 with torch-layout shape `want`, or a WeightsError naming the key."""
  if key not in sd:
    raise WeightsError(f"{path}: missing key {key!r} (not a torchvision ResNet state dict "
                       "for this model.encoder, or a truncated file)")
  value = np.asarray(sd[key])
  if _shape(value) != want:
    raise WeightsError(f"{path}: key {key!r} has shape {_shape(value)}, expected "
                       f"{want_text or want} "
                       "(check model.encoder / model.encoder_width)")
  if not np.issubdtype(value.dtype, np.floating):
    raise WeightsError(f"{path}: key {key!r} has dtype {value.dtype}, expected floating point")
  return value.astype(np.float32)


def _conv_kernel(sd: dict, key: str, kernel, path: str) -> np.ndarray:
  """A torch OIHW conv weight as a flax HWIO kernel; RGB → L summed for a 1-channel input."""
  kh, kw, cin, cout = _shape(kernel)
  rgb = (cout, 3, kh, kw)
  stem = cin == 1 or (cin == HINT_STEM_CHANNELS and key == "conv1.weight")  # L (+ hints)
  if stem and key in sd and _shape(sd[key]) == rgb:
    # L = R = G = B, so conv(L, ΣW_c) == conv(RGB, W) exactly; a hint model's hint channels
    # start at zero, so before training it computes exactly the automatic model's features.
    value = _take(sd, key, rgb, path).sum(axis=1, keepdims=True)
    value = np.concatenate([value, np.zeros((cout, cin - 1, kh, kw), np.float32)], axis=1)
  else:
    want = (cout, cin, kh, kw)
    value = _take(sd, key, want, path, f"{rgb} or {want}" if stem else "")
  return np.transpose(value, (2, 3, 1, 0))


def encoder_from_state_dict(sd: dict, params: dict, stats: dict,
                            path: str = "state dict") -> tuple[dict, dict]:
  """New (params, batch_stats) of an encoder, shaped like `params`/`stats`, taken from `sd`.

  Raises WeightsError naming the first missing or mis-shaped key (in the file's own order of
  modules: stem, layer1.0, …), or a key of the file's encoder that the model lacks.
  """
  new_params, new_stats, used = {}, {}, set()
  for name, leaves in _modules(params):
    module = _torch_module(name)
    p_out, s_out = {}, {}
    if "kernel" in leaves:                        # a convolution (no bias in ResNets)
      key = f"{module}.weight"
      p_out["kernel"] = _conv_kernel(sd, key, leaves["kernel"], path)
      used.add(key)
    else:                                         # a BatchNorm
      n = _shape(leaves["scale"])
      for ours, theirs in _BN_PARAMS.items():
        p_out[ours] = _take(sd, f"{module}.{theirs}", n, path)
      for ours, theirs in _BN_STATS.items():
        s_out[ours] = _take(sd, f"{module}.{theirs}", n, path)
      used.update(f"{module}.{t}" for t in (*_BN_PARAMS.values(), *_BN_STATS.values()))
    _set(new_params, name, p_out)
    if s_out:
      _set(new_stats, name, s_out)
  extra = [k for k in sd if k not in used and not _IGNORED.search(k)]
  if extra:
    raise WeightsError(f"{path}: key {extra[0]!r} has no place in this encoder "
                       f"({len(extra)} such keys; a deeper ResNet than model.encoder?)")
  return new_params, new_stats


def _set(tree: dict, name: str, value: dict) -> None:
  *parents, last = name.split("/")
  for p in parents:
    tree = tree.setdefault(p, {})
  tree[last] = value


def load_encoder_weights(variables: dict, path: str) -> dict:
  """Generator `variables` ({"params", "batch_stats"}) with the encoder taken from `path`.

  Everything outside `encoder` (decoder, head) is kept as given. The returned arrays are
  float32 numpy arrays; the inputs are not modified.
  """
  params, stats = variables.get("params", {}), variables.get("batch_stats", {})
  if "encoder" not in params:
    raise WeightsError(f"{path}: the model has no 'encoder' to load weights into")
  sd = read_state_dict(path)
  enc_params, enc_stats = encoder_from_state_dict(
      sd, _unfreeze(params["encoder"]), _unfreeze(stats.get("encoder", {})), path)
  out = dict(variables)
  out["params"] = {**params, "encoder": enc_params}
  out["batch_stats"] = {**stats, "encoder": enc_stats}
  return out


def _unfreeze(tree: Any) -> dict:
  """Nested plain dicts (flax may hand over FrozenDicts)."""
  if hasattr(tree, "items"):
    return {k: _unfreeze(v) for k, v in tree.items()}
  return tree
