"""Convert a PyTorch state dict to a pickle-free file that colorjax reads without torch.

  python -m colorjax.convert resnet34-b627a593.pth resnet34.safetensors   # or .npz

Reads SRC (.pth/.pt with torch, read with `weights_only=True`; or .safetensors / .npz) and
writes every tensor to DST: floating-point tensors as float32, integer ones (BatchNorm's
`num_batches_tracked`) unchanged. Exit status 0 on success, 2 with one "error: …" line on
stderr for a bad argument or file.
"""
from __future__ import annotations

import os
import sys
from typing import Sequence

import numpy as np

from colorjax.models import weights

USAGE = "usage: python -m colorjax.convert SRC.pth DST.safetensors|DST.npz"


def convert(src: str, dst: str) -> dict[str, np.ndarray]:
  """Write the tensors of `src` to `dst` (.safetensors or .npz); returns what was written."""
  ext = os.path.splitext(dst)[1].lower()
  if ext not in (".safetensors", ".npz"):
    raise weights.WeightsError(f"{dst}: output must end in .safetensors or .npz")
  tensors = {name: np.ascontiguousarray(
      value.astype(np.float32) if np.issubdtype(value.dtype, np.floating) else value)
      for name, value in weights.read_state_dict(src).items()}
  if not tensors:
    raise weights.WeightsError(f"{src}: holds no tensors")
  os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
  tmp = dst + ".tmp"  # never leave a half-written file under the real name
  if ext == ".safetensors":
    try:
      from safetensors.numpy import save_file
    except ImportError:
      raise weights.WeightsError("writing .safetensors needs the safetensors package "
                                 "(pip install safetensors); or write .npz") from None
    save_file(tensors, tmp, metadata={"source": os.path.basename(src)})
  else:
    with open(tmp, "wb") as f:
      np.savez(f, **tensors)
  os.replace(tmp, dst)
  return tensors


def main(argv: Sequence[str] | None = None) -> int:
  args = list(sys.argv[1:] if argv is None else argv)
  if len(args) != 2 or any(a.startswith("-") for a in args):
    print(USAGE, file=sys.stderr)
    return 2
  src, dst = args
  try:
    tensors = convert(src, dst)
  except weights.WeightsError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  except OSError as e:
    print(f"error: {dst}: cannot write ({e.strerror or e})", file=sys.stderr)
    return 2
  n = sum(int(v.size) for v in tensors.values())
  print(f"wrote {len(tensors)} tensors ({n:,} values) to {dst}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
