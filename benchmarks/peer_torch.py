"""The PyTorch peer of colorjax's training step, for benchmarks/train_step.py only.

Generator: segmentation_models_pytorch's `Unet('resnet34', encoder_weights=None, in_channels=1,
classes=2)` followed by tanh. When smp cannot be imported (it needs torchvision and timm, and
PyPI's torchvision does not load beside the CPU build of torch 2.13.0 used here) the same
architecture is built from scratch below: torchvision's ResNet34 BasicBlocks as encoder, smp's
UNet decoder (nearest ×2 upsampling, concatenated skip, two 3×3 conv-BN-ReLU per block, no
centre block, no attention) and a 3×3 segmentation head. Either way it has 24,430,242
parameters, asserted at construction. Discriminator: pix2pix's NLayerDiscriminator (70×70
PatchGAN, n_layers=3, BatchNorm), 2,765,633 parameters. Losses and optimiser as pix2pix:
BCE-with-logits GAN loss, D loss halved, L1 weight λ=100, Adam(2e-4, betas (0.5, 0.999)).

Torch is a benchmark-only extra: nothing in `colorjax` imports this module.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

G_PARAMS = 24_430_242
D_PARAMS = 2_765_633


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
  return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                       nn.ReLU(inplace=True))


class BasicBlock(nn.Module):
  """torchvision's ResNet BasicBlock."""

  def __init__(self, cin: int, cout: int, stride: int):
    super().__init__()
    self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(cout)
    self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
    self.bn2 = nn.BatchNorm2d(cout)
    self.downsample = None
    if stride != 1 or cin != cout:
      self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                      nn.BatchNorm2d(cout))

  def forward(self, x):
    y = F.relu(self.bn1(self.conv1(x)), inplace=True)
    y = self.bn2(self.conv2(y))
    return F.relu(y + (x if self.downsample is None else self.downsample(x)), inplace=True)


class UnetResNet34(nn.Module):
  """smp.Unet('resnet34', in_channels=1, classes=2) rebuilt without torchvision/timm."""

  def __init__(self, in_channels: int = 1, classes: int = 2,
               decoder_channels=(256, 128, 64, 32, 16)):
    super().__init__()
    self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
    self.bn1 = nn.BatchNorm2d(64)
    self.maxpool = nn.MaxPool2d(3, 2, 1)
    layers, cin = [], 64
    for i, blocks in enumerate((3, 4, 6, 3)):
      cout = 64 * 2**i
      stage = [BasicBlock(cin if j == 0 else cout, cout, 2 if i > 0 and j == 0 else 1)
               for j in range(blocks)]
      layers.append(nn.Sequential(*stage))
      cin = cout
    self.layers = nn.ModuleList(layers)
    skips = (256, 128, 64, 64, 0)       # skip channels at 1/16, 1/8, 1/4, 1/2, none
    ins = (512,) + tuple(decoder_channels[:-1])
    self.decoder = nn.ModuleList(
        nn.Sequential(_conv_bn_relu(i + s, o), _conv_bn_relu(o, o))
        for i, s, o in zip(ins, skips, decoder_channels))
    self.head = nn.Conv2d(decoder_channels[-1], classes, 3, padding=1)

  def forward(self, x):
    x = F.relu(self.bn1(self.conv1(x)), inplace=True)
    feats = [x]
    x = self.maxpool(x)
    for layer in self.layers:
      x = layer(x)
      feats.append(x)
    skips = feats[-2::-1] + [None]
    for block, skip in zip(self.decoder, skips):
      x = F.interpolate(x, scale_factor=2, mode="nearest")
      if skip is not None:
        x = torch.cat([x, skip], dim=1)
      x = block(x)
    return self.head(x)


class Generator(nn.Module):
  """UNet-ResNet34 (smp's when importable) + tanh: L [N,1,H,W] → ab [N,2,H,W] in [-1, 1]."""

  def __init__(self):
    super().__init__()
    try:
      import segmentation_models_pytorch as smp
      self.net = smp.Unet("resnet34", encoder_weights=None, in_channels=1, classes=2)
      self.source = f"segmentation_models_pytorch {smp.__version__}"
    except Exception:                   # ImportError, or torchvision's operator mismatch
      self.net = UnetResNet34()
      self.source = "from-scratch UNet-ResNet34 (smp not importable)"
    n = sum(p.numel() for p in self.parameters())
    assert n == G_PARAMS, f"generator has {n:,} parameters, expected {G_PARAMS:,}"

  def forward(self, L):
    return torch.tanh(self.net(L))


class PatchGAN(nn.Module):
  """pix2pix NLayerDiscriminator(input_nc=3, ndf=64, n_layers=3, norm=BatchNorm2d)."""

  def __init__(self, in_channels: int = 3, width: int = 64, n_layers: int = 3):
    super().__init__()
    seq = [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
    mult = 1
    for n in range(1, n_layers + 1):
      prev, mult = mult, min(2**n, 8)
      stride = 2 if n < n_layers else 1
      seq += [nn.Conv2d(width * prev, width * mult, 4, stride, 1, bias=False),
              nn.BatchNorm2d(width * mult), nn.LeakyReLU(0.2, True)]
    seq += [nn.Conv2d(width * mult, 1, 4, 1, 1)]
    self.model = nn.Sequential(*seq)
    n = sum(p.numel() for p in self.parameters())
    assert n == D_PARAMS, f"discriminator has {n:,} parameters, expected {D_PARAMS:,}"

  def forward(self, L, ab):
    return self.model(torch.cat([L, ab], dim=1))


class Pix2PixStep:
  """One pix2pix D+G update on CPU (float32), as `colorjax.train.train_step`."""

  def __init__(self, l1_weight: float = 100.0, lr: float = 2e-4, seed: int = 0):
    torch.manual_seed(seed)
    self.g, self.d = Generator(), PatchGAN()
    self.g.train()
    self.d.train()
    self.opt_g = torch.optim.Adam(self.g.parameters(), lr=lr, betas=(0.5, 0.999))
    self.opt_d = torch.optim.Adam(self.d.parameters(), lr=lr, betas=(0.5, 0.999))
    self.l1_weight = l1_weight
    self.bce = nn.BCEWithLogitsLoss()

  def __call__(self, L: torch.Tensor, ab: torch.Tensor) -> dict[str, float]:
    fake = self.g(L)
    # D: real vs fake (detached), loss halved.
    for p in self.d.parameters():
      p.requires_grad_(True)
    self.opt_d.zero_grad(set_to_none=True)
    real_logits, fake_logits = self.d(L, ab), self.d(L, fake.detach())
    d_loss = 0.5 * (self.bce(real_logits, torch.ones_like(real_logits))
                    + self.bce(fake_logits, torch.zeros_like(fake_logits)))
    d_loss.backward()
    self.opt_d.step()
    # G: fool the updated D + λ·L1.
    for p in self.d.parameters():
      p.requires_grad_(False)
    self.opt_g.zero_grad(set_to_none=True)
    logits = self.d(L, fake)
    l1 = (fake - ab).abs().mean()
    g_loss = self.bce(logits, torch.ones_like(logits)) + self.l1_weight * l1
    g_loss.backward()
    self.opt_g.step()
    return {"d_loss": float(d_loss), "g_loss": float(g_loss)}


def make_batch(batch: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
  """A random NCHW (L, ab) batch in [-1, 1]."""
  gen = torch.Generator().manual_seed(seed)
  L = torch.rand(batch, 1, size, size, generator=gen) * 2 - 1
  ab = torch.rand(batch, 2, size, size, generator=gen) * 2 - 1
  return L, ab
