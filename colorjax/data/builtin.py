"""Built-in, download-free datasets for the two domains of the cross-domain study.

* ``toon``  – procedurally drawn cel-shaded cartoon frames (PIL.ImageDraw): banded sky
  (day / sunset / night), sun or moon, clouds, hills or snowy mountains, grass, paths and ponds,
  trees, houses and simple characters, all flat colour regions with dark ink outlines and a
  2-3 tone cel shading (a darker band on the side away from the scene's light). Drawn at 2x
  (4x below 128 px) and downsampled with LANCZOS, so the ink lines are anti-aliased.
* ``photo`` – random square crops (side 0.3-1.0 of the short side, random position) of the
  colour photographs that scikit-image ships inside its wheel (no pooch download):
    train: astronaut, rocket, motorcycle (left and right views of the stereo pair)
    test:  chelsea (the cat), coffee
  The split is by *source photo*, so test crops never show a train photo.

Both domains are unbounded (``num_available`` returns None) and deterministic in
(domain, index, size, split): the random stream is seeded from (domain, split, index) only, so a
given index shows the same scene / crop at every size, and train/test streams are disjoint.

This module must not import JAX: it runs inside data-loader worker processes.
"""
from __future__ import annotations

import functools
import math

import numpy as np
from PIL import Image, ImageDraw

DOMAINS = ("toon", "photo")
SPLITS = ("train", "test")

# Colour photographs shipped inside the scikit-image wheel (skimage/data/*.png|jpg); loading
# them never triggers a pooch download. Greyscale ones (camera, moon, coins, ...) and
# non-photographic ones (immunohistochemistry, retina, hubble_deep_field, colorwheel, logo)
# are excluded.
# Each entry is one source scene; a tuple of names is a group of views of the same scene (the
# stereo motorcycle pair), drawn with the weight of a single photo.
PHOTO_SOURCES = {
    "train": ("astronaut", "rocket", ("motorcycle_left", "motorcycle_right")),
    "test": ("chelsea", "coffee"),
}

_DOMAIN_CODE = {"toon": 1, "photo": 2}
_SPLIT_CODE = {"train": 0, "test": 1}
_SEED_TAG = 0xC0104A  # fixed entropy prefix: no Python hash() involved


def _check(domain: str, split: str) -> None:
  if domain not in DOMAINS:
    raise ValueError(f"unknown built-in domain {domain!r}; expected one of {DOMAINS}")
  if split not in SPLITS:
    raise ValueError(f"unknown split {split!r} for built-in domain {domain!r}; "
                     f"expected one of {SPLITS}")


def _rng(domain: str, index: int, split: str) -> np.random.Generator:
  """Independent stream per (domain, split, index); train and test never share a seed."""
  if index < 0:
    raise ValueError(f"built-in {domain!r}/{split!r}: index must be >= 0, got {index}")
  seq = np.random.SeedSequence([_SEED_TAG, _DOMAIN_CODE[domain], _SPLIT_CODE[split], int(index)])
  return np.random.default_rng(seq)


def num_available(domain: str, split: str) -> int | None:
  """How many distinct images the domain/split has; None means unbounded (both domains)."""
  _check(domain, split)
  return None


def render(domain: str, index: int, size: int, split: str = "train") -> np.ndarray:
  """uint8 RGB array [size, size, 3]; deterministic in (domain, index, size, split)."""
  _check(domain, split)
  size = int(size)
  if size < 1:
    raise ValueError(f"built-in {domain!r}: size must be >= 1, got {size}")
  rng = _rng(domain, int(index), split)
  if domain == "toon":
    im = _draw_toon(rng, size)
    im = im.resize((size, size), Image.Resampling.LANCZOS)
  else:
    im = _photo_crop(rng, size, split)
  out = np.asarray(im, dtype=np.uint8)
  assert out.shape == (size, size, 3), out.shape
  return out


def toon_canvas(index: int, size: int, split: str = "train") -> Image.Image:
  """The toon frame `render("toon", index, size, split)` downsamples, at full drawing size."""
  _check("toon", split)
  return _draw_toon(_rng("toon", int(index), split), int(size))


def supersample(size: int) -> int:
  """Drawing scale of the toon frames: 4x below 128 px (crisper thin lines), else 2x."""
  return 4 if size < 128 else 2


# ----------------------------------------------------------------------------------------------
# photo: crops of scikit-image's bundled colour photographs


@functools.lru_cache(maxsize=None)
def _photo(name: str) -> Image.Image:
  """One bundled photo as an RGB PIL image (loaded once per process)."""
  from skimage import data  # lazy: only photo workers pay for the import
  if name in ("motorcycle_left", "motorcycle_right"):
    left, right, _ = data.stereo_motorcycle()
    arr = left if name == "motorcycle_left" else right
  else:
    arr = getattr(data, name)()
  arr = np.asarray(arr)
  if arr.ndim != 3 or arr.shape[2] < 3:
    raise ValueError(f"skimage photo {name!r} is not an RGB image: shape {arr.shape}")
  im = Image.fromarray(np.ascontiguousarray(arr[..., :3]).astype(np.uint8), "RGB")
  im.load()
  return im


def _photo_crop(rng: np.random.Generator, size: int, split: str) -> Image.Image:
  sources = PHOTO_SOURCES[split]
  name = sources[int(rng.integers(len(sources)))]
  if isinstance(name, tuple):
    name = name[int(rng.integers(len(name)))]
  scale = float(rng.uniform(0.3, 1.0))
  fx, fy = float(rng.random()), float(rng.random())
  im = _photo(name)
  w, h = im.size
  side = scale * min(w, h)
  x0 = fx * (w - side)
  y0 = fy * (h - side)
  return im.resize((size, size), Image.Resampling.LANCZOS, box=(x0, y0, x0 + side, y0 + side))


# ----------------------------------------------------------------------------------------------
# toon: cel-shaded cartoon frames

INK = (24, 18, 28)


def _clip(c) -> tuple:
  return tuple(int(v) for v in np.clip(np.round(c), 0, 255))


def _mix(a, b, t: float) -> tuple:
  a, b = np.asarray(a, float), np.asarray(b, float)
  return _clip(a + (b - a) * t)


def _shade(c, k: float = 0.72) -> tuple:
  """Cel shadow tone: darker, nudged toward blue/purple like a painted shadow."""
  c = np.asarray(c, float)
  return _clip(c * k + np.array([6.0, 4.0, 30.0]) * (1 - k) * 1.6)


def _light(c, t: float = 0.4) -> tuple:
  return _mix(c, (255, 255, 245), t)


def _fix_box(box):
  x0, y0, x1, y1 = box
  if x1 < x0:
    x0 = x1 = (x0 + x1) / 2
  if y1 < y0:
    y0 = y1 = (y0 + y1) / 2
  return (x0, y0, x1, y1)


class _SafeDraw:
  """ImageDraw whose box-taking primitives tolerate boxes that collapse at tiny sizes."""

  def __init__(self, draw: ImageDraw.ImageDraw):
    self._d = draw

  def __getattr__(self, name):
    return getattr(self._d, name)

  def ellipse(self, box, **kw):
    self._d.ellipse(_fix_box(box), **kw)

  def rectangle(self, box, **kw):
    self._d.rectangle(_fix_box(box), **kw)

  def rounded_rectangle(self, box, radius=0, **kw):
    x0, y0, x1, y1 = box = _fix_box(box)
    radius = max(0.0, min(radius, (x1 - x0) / 2, (y1 - y0) / 2))
    self._d.rounded_rectangle(box, radius=radius, **kw)

  def chord(self, box, start, end, **kw):
    self._d.chord(_fix_box(box), start, end, **kw)

  def arc(self, box, start, end, **kw):
    self._d.arc(_fix_box(box), start, end, **kw)


class _Toon:
  """Draws one scene on a square canvas of `W` px; coordinates are fractions of W."""

  def __init__(self, rng: np.random.Generator, size: int):
    self.rng = rng
    self.f = supersample(size)
    self.W = W = size * self.f
    self.im = Image.new("RGB", (W, W), (0, 0, 0))
    self.d = _SafeDraw(ImageDraw.Draw(self.im))
    # ink width in canvas px: ~0.9 % of the frame, at least 1 output px from 32 px up (thinner
    # below, so tiny frames are not all outline)
    self.iw = max(0.009 * size, min(1.0, size / 32)) * self.f
    lx = float(rng.choice([-1.0, 1.0]))            # light comes from upper-left or upper-right
    n = math.hypot(lx, 1.3)
    self.L = (lx / n, -1.3 / n)

  # -- helpers ---------------------------------------------------------------------------------
  def jit(self, c, amt: float = 12.0) -> tuple:
    return _clip(np.asarray(c, float) + self.rng.normal(0, amt / 2, 3))

  def pick(self, options):
    return options[int(self.rng.integers(len(options)))]

  def P(self, *xy):
    return tuple(v * self.W for v in xy)

  def _lit_point_ellipse(self, cx, cy, rx, ry):
    lx, ly = self.L
    n = math.sqrt((rx * lx) ** 2 + (ry * ly) ** 2) or 1.0
    return cx + rx * rx * lx / n, cy + ry * ry * ly / n

  def blobs(self, circles, base, shade=None, k=0.78, highlight=False, ink=True):
    """A union of ellipses (cx, cy, rx, ry in canvas px) with one outer ink line + cel shade.

    The lit tone is each ellipse shrunk by a homothety about its boundary point facing the light,
    so it stays inside the shape and leaves a crescent of shadow on the far side.
    """
    d, iw = self.d, self.iw
    shade = shade or _shade(base)
    if ink:
      for cx, cy, rx, ry in circles:
        d.ellipse((cx - rx - iw / 2, cy - ry - iw / 2, cx + rx + iw / 2, cy + ry + iw / 2), fill=INK)
    inner = [(cx, cy, max(rx - iw / 2, 0.5), max(ry - iw / 2, 0.5)) for cx, cy, rx, ry in circles]
    for cx, cy, rx, ry in inner:
      d.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=shade)
    for cx, cy, rx, ry in inner:
      px, py = self._lit_point_ellipse(cx, cy, rx, ry)
      ncx, ncy = px + (cx - px) * k, py + (cy - py) * k
      d.ellipse((ncx - rx * k, ncy - ry * k, ncx + rx * k, ncy + ry * k), fill=base)
    if highlight:
      hi = _light(base, 0.35)
      for cx, cy, rx, ry in inner[:2]:
        px, py = self._lit_point_ellipse(cx, cy, rx, ry)
        kk = 0.3
        ncx, ncy = px + (cx - px) * (kk + 0.12), py + (cy - py) * (kk + 0.12)
        d.ellipse((ncx - rx * kk, ncy - ry * kk, ncx + rx * kk, ncy + ry * kk), fill=hi)

  def circle(self, cx, cy, r, base, **kw):
    self.blobs([(cx, cy, r, r)], base, **kw)

  def outline(self, pts, width=None, closed=True):
    pts = list(pts)
    if closed:
      pts = pts + [pts[0], pts[1]]
    self.d.line(pts, fill=INK, width=max(1, int(round(width or self.iw))), joint="curve")

  def poly(self, pts, fill):
    self.d.polygon(pts, fill=fill)
    self.outline(pts)

  def rect_cel(self, x0, y0, x1, y1, base, side=0.24, top=0.0):
    """Rectangle, shadow strip on the side away from the light, ink frame."""
    d = self.d
    d.rectangle((x0, y0, x1, y1), fill=base)
    sh = _shade(base)
    w = (x1 - x0) * side
    if self.L[0] < 0:
      d.rectangle((x1 - w, y0, x1, y1), fill=sh)
    else:
      d.rectangle((x0, y0, x0 + w, y1), fill=sh)
    if top:
      d.rectangle((x0, y0, x1, y0 + (y1 - y0) * top), fill=sh)
    self.outline([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])

  def thick_line(self, pts, width, color):
    """A stroke of `color` with an ink border (limbs, tree branches, rays)."""
    d, iw = self.d, self.iw
    d.line(pts, fill=INK, width=int(round(width + 2 * iw)), joint="curve")
    for p in (pts[0], pts[-1]):
      r = width / 2 + iw
      d.ellipse((p[0] - r, p[1] - r, p[0] + r, p[1] + r), fill=INK)
    d.line(pts, fill=color, width=int(round(width)), joint="curve")
    for p in (pts[0], pts[-1]):
      r = width / 2
      d.ellipse((p[0] - r, p[1] - r, p[0] + r, p[1] + r), fill=color)

  # -- scene -----------------------------------------------------------------------------------
  def draw(self) -> Image.Image:
    rng = self.rng
    self.mode = self.pick(["day"] * 13 + ["sunset"] * 5 + ["night"] * 2)
    self.h = float(rng.uniform(0.42, 0.66))  # horizon
    self.sky()
    if self.mode == "sunset":
      self.sun()
    self.clouds()
    back = rng.random()
    if back < 0.3:
      self.mountains()
    elif back < 0.85:
      self.hills()
    if self.mode != "sunset":
      self.sun()
    self.ground()
    self.objects()
    return self.im

  def sky(self):
    rng, d, W, h = self.rng, self.d, self.W, self.h
    if self.mode == "day":
      stops = [self.jit((55, 115, 215), 20), self.jit((175, 220, 250), 12)]
    elif self.mode == "sunset":
      stops = [self.jit((70, 55, 140), 16), self.jit((235, 110, 110), 16),
               self.jit((255, 200, 110), 12)]
    else:
      stops = [self.jit((14, 18, 55), 8), self.jit((45, 55, 120), 12)]
    n = int(rng.integers(4, 7))
    bottom = h + 0.05
    for i in range(n):
      t = i / (n - 1)
      seg = t * (len(stops) - 1)
      j = min(int(seg), len(stops) - 2)
      col = _mix(stops[j], stops[j + 1], seg - j)
      y0 = bottom * (i / n) ** 0.8 if i else 0.0
      d.rectangle((0, y0 * W, W, W), fill=col)
    if self.mode == "night":
      for _ in range(int(rng.integers(12, 30))):
        x, y = rng.uniform(0, 1), rng.uniform(0, h - 0.05)
        r = rng.uniform(0.003, 0.008) * W + self.f * 0.5
        d.ellipse((x * W - r, y * W - r, x * W + r, y * W + r), fill=(255, 250, 200))

  def sun(self):
    rng, W, h = self.rng, self.W, self.h
    x = float(rng.uniform(0.1, 0.9))
    if self.mode == "day":
      if rng.random() < 0.2:
        return
      r = float(rng.uniform(0.055, 0.09))
      y = float(rng.uniform(0.1, max(0.12, h - 0.22)))
      col = self.jit((255, 215, 50), 10)
      ray = _mix(col, (255, 150, 30), 0.3)
      n = int(rng.integers(8, 13))
      a0 = rng.uniform(0, 2 * np.pi)
      for i in range(n):
        a = a0 + 2 * np.pi * i / n
        p0 = (W * (x + 1.35 * r * np.cos(a)), W * (y + 1.35 * r * np.sin(a)))
        p1 = (W * (x + 1.75 * r * np.cos(a)), W * (y + 1.75 * r * np.sin(a)))
        self.thick_line([p0, p1], 0.018 * W, ray)
      self.circle(x * W, y * W, r * W, col, shade=_mix(col, (240, 140, 30), 0.5), k=0.85)
    elif self.mode == "sunset":
      r = float(rng.uniform(0.1, 0.16))
      y = h - float(rng.uniform(0.0, 0.06))
      col = self.jit((255, 175, 60), 10)
      self.circle(x * W, y * W, r * W, col, shade=_mix(col, (230, 80, 60), 0.5), k=0.85)
    else:
      r = float(rng.uniform(0.05, 0.08))
      y = float(rng.uniform(0.08, max(0.1, h - 0.2)))
      col = (245, 238, 200)
      self.circle(x * W, y * W, r * W, col, shade=(200, 195, 170), k=0.85)
      for _ in range(3):
        cx = x + rng.uniform(-0.5, 0.5) * r
        cy = y + rng.uniform(-0.5, 0.5) * r
        cr = rng.uniform(0.12, 0.22) * r * W
        self.d.ellipse((cx * W - cr, cy * W - cr, cx * W + cr, cy * W + cr), fill=(215, 210, 180))

  def clouds(self):
    rng, W, h = self.rng, self.W, self.h
    n = {"day": int(rng.integers(1, 4)), "sunset": int(rng.integers(0, 3)),
         "night": int(rng.integers(0, 2))}[self.mode]
    base, shade = {"day": ((252, 252, 255), (196, 208, 236)),
                   "sunset": ((255, 210, 200), (215, 140, 165)),
                   "night": ((110, 115, 160), (78, 82, 128))}[self.mode]
    for _ in range(n):
      cx = float(rng.uniform(0.05, 0.95))
      cy = float(rng.uniform(0.07, max(0.09, h - 0.15)))
      width = float(rng.uniform(0.12, 0.26))
      m = int(rng.integers(3, 6))
      circles = []
      for i in range(m):
        t = (i + 0.5) / m - 0.5
        rr = width * rng.uniform(0.22, 0.34) * (1.15 - abs(t))
        circles.append(((cx + t * width) * W, (cy - rr * 0.45 + 0.01) * W, rr * W, rr * W))
      circles.append((cx * W, (cy + 0.012) * W, width * 0.62 * W, width * 0.16 * W))
      self.blobs(circles, base, shade=shade, k=0.8)

  def hills(self):
    rng, W, h = self.rng, self.W, self.h
    n = int(rng.integers(1, 4))
    greens = {"day": (120, 185, 110), "sunset": (130, 140, 95), "night": (35, 70, 75)}[self.mode]
    for i in range(n):
      cx = float(rng.uniform(-0.1, 1.1))
      rx = float(rng.uniform(0.25, 0.55))
      ry = float(rng.uniform(0.07, 0.18))
      col = self.jit(_mix(greens, (150, 190, 210), 0.25 * (n - 1 - i) / max(n - 1, 1)), 16)
      self.blobs([(cx * W, (h + 0.02) * W, rx * W, ry * W)], col, k=0.88)

  def mountains(self):
    rng, W, h = self.rng, self.W, self.h
    n = int(rng.integers(1, 4))
    rock = {"day": (125, 130, 175), "sunset": (130, 95, 130), "night": (50, 55, 95)}[self.mode]
    snow = {"day": (250, 250, 255), "sunset": (255, 220, 215), "night": (170, 175, 205)}[self.mode]
    for _ in range(n):
      px = float(rng.uniform(0.0, 1.0))
      ph = float(rng.uniform(0.14, 0.3))
      hw = ph * float(rng.uniform(1.0, 1.6))
      col = self.jit(rock, 14)
      top, left, right = (px * W, (h - ph) * W), ((px - hw) * W, (h + 0.03) * W), \
          ((px + hw) * W, (h + 0.03) * W)
      mid = (px * W + (0.04 * W if self.L[0] < 0 else -0.04 * W), (h + 0.03) * W)
      self.d.polygon([top, left, right], fill=col)
      shadow = [top, right, mid] if self.L[0] < 0 else [top, left, mid]
      self.d.polygon(shadow, fill=_shade(col))
      # snow cap: the top 30 % of the peak with a zigzag lower edge
      s = 0.3
      a = (top[0] + (left[0] - top[0]) * s, top[1] + (left[1] - top[1]) * s)
      b = (top[0] + (right[0] - top[0]) * s, top[1] + (right[1] - top[1]) * s)
      zig = [a]
      for j in range(1, 4):
        t = j / 4
        zy = a[1] + (0.03 * W if j % 2 else -0.005 * W)
        zig.append((a[0] + (b[0] - a[0]) * t, zy))
      zig.append(b)
      self.d.polygon([top] + zig, fill=snow)
      sx = top[0] + (mid[0] - top[0]) * s
      cap_shadow = [top, b, (sx, b[1] + 0.01 * W)] if self.L[0] < 0 else \
          [top, a, (sx, a[1] + 0.01 * W)]
      self.d.polygon(cap_shadow, fill=_shade(snow, 0.82))
      self.outline([top, left, right])

  def ground(self):
    rng, d, W, h = self.rng, self.d, self.W, self.h
    grass = {"day": (105, 190, 70), "sunset": (120, 150, 60), "night": (35, 85, 65)}[self.mode]
    if self.mode == "day" and rng.random() < 0.15:
      grass = (205, 185, 90)  # dry / autumn field
    self.grass = grass = self.jit(grass, 16)
    # gently wavy horizon line
    xs = np.linspace(-0.02, 1.02, 9)
    amp = float(rng.uniform(0.0, 0.025))
    ph = rng.uniform(0, 2 * np.pi)
    edge = [(x * W, (h + amp * np.sin(3 * x + ph)) * W) for x in xs]
    d.polygon(edge + [(1.02 * W, 1.02 * W), (-0.02 * W, 1.02 * W)], fill=grass)
    # cel shading: darker foreground band + a few flat shadow patches
    dark = _shade(grass, 0.82)
    fy = float(rng.uniform(0.82, 0.92))
    d.polygon([(-0.02 * W, fy * W), (0.5 * W, (fy + rng.uniform(-0.04, 0.04)) * W),
               (1.02 * W, (fy + rng.uniform(-0.04, 0.04)) * W), (1.02 * W, 1.02 * W),
               (-0.02 * W, 1.02 * W)], fill=dark)
    for _ in range(int(rng.integers(1, 4))):
      x, y = rng.uniform(0, 1), rng.uniform(h + 0.06, 0.85)
      rx, ry = rng.uniform(0.06, 0.15), rng.uniform(0.012, 0.025)
      d.ellipse(((x - rx) * W, (y - ry) * W, (x + rx) * W, (y + ry) * W), fill=dark)
    self.outline(edge, closed=False)
    feature = rng.random()
    if feature < 0.4:
      self.path()
    elif feature < 0.65:
      self.pond()
    # grass tufts
    for _ in range(int(rng.integers(4, 10))):
      x, y = rng.uniform(0.02, 0.98), rng.uniform(h + 0.08, 0.98)
      s = 0.012 + 0.02 * (y - h) / (1 - h)
      pts = [((x - s) * W, (y - 1.2 * s) * W), (x * W, y * W), (x * W, (y - 1.6 * s) * W),
             (x * W, y * W), ((x + s) * W, (y - 1.2 * s) * W)]
      d.line(pts, fill=_shade(grass, 0.55), width=max(1, int(self.iw * 0.8)))

  def path(self):
    rng, W, h = self.rng, self.W, self.h
    bx = float(rng.uniform(0.2, 0.8))
    bw = float(rng.uniform(0.12, 0.22))
    tx = float(rng.uniform(0.3, 0.7))
    col = self.jit({"day": (225, 200, 150), "sunset": (215, 165, 120),
                    "night": (90, 90, 110)}[self.mode], 10)
    pts = [(tx * W - 0.01 * W, h * W + 0.01 * W), (tx * W + 0.01 * W, h * W + 0.01 * W),
           ((bx + bw) * W, 1.02 * W), ((bx - bw) * W, 1.02 * W)]
    self.d.polygon(pts, fill=col)
    sh = [pts[1], pts[2], ((bx + bw * 0.6) * W, 1.02 * W)] if self.L[0] < 0 else \
         [pts[0], pts[3], ((bx - bw * 0.6) * W, 1.02 * W)]
    self.d.polygon(sh, fill=_shade(col, 0.82))
    self.outline([pts[0], pts[3]], closed=False)
    self.outline([pts[1], pts[2]], closed=False)

  def pond(self):
    rng, W, h = self.rng, self.W, self.h
    cx = float(rng.uniform(0.2, 0.8))
    cy = float(rng.uniform(h + 0.1, 0.85))
    rx = float(rng.uniform(0.12, 0.22))
    ry = rx * float(rng.uniform(0.22, 0.35))
    col = self.jit({"day": (80, 160, 230), "sunset": (200, 120, 150),
                    "night": (30, 45, 100)}[self.mode], 10)
    self.blobs([(cx * W, cy * W, rx * W, ry * W)], _light(col, 0.25), shade=col, k=0.75)
    for _ in range(2):
      x = cx + rng.uniform(-0.5, 0.3) * rx
      y = cy + rng.uniform(-0.3, 0.3) * ry
      self.d.line([(x * W, y * W), ((x + rx * 0.3) * W, y * W)], fill=(235, 245, 255),
                  width=max(1, int(self.iw)))

  def objects(self):
    rng, h = self.rng, self.h
    items = []
    for _ in range(int(rng.integers(0, 3))):
      items.append(("house", float(rng.uniform(h + 0.05, h + 0.45 * (1 - h)))))
    for _ in range(int(rng.integers(1, 5))):
      items.append(("tree", float(rng.uniform(h + 0.03, 0.95))))
    for _ in range(int(rng.integers(0, 3))):
      items.append(("bush", float(rng.uniform(h + 0.05, 0.98))))
    nchar = self.pick([0, 1, 1, 2, 2, 3])
    for _ in range(nchar):
      items.append(("char", float(rng.uniform(h + 0.25 * (1 - h), 0.97))))
    for _ in range(int(rng.integers(0, 10))):
      items.append(("flower", float(rng.uniform(h + 0.05, 0.99))))
    items.sort(key=lambda it: it[1])
    for kind, y in items:
      s = 0.4 + 0.95 * (y - h) / (1 - h)   # nearer the viewer -> bigger
      x = float(rng.uniform(0.05, 0.95))
      getattr(self, kind)(x * self.W, y * self.W, s * self.W)

  def house(self, x, y, u):
    rng, d = self.rng, self.d
    ww = u * float(rng.uniform(0.32, 0.45))
    wh = u * float(rng.uniform(0.22, 0.3))
    x0, x1, y1 = x - ww / 2, x + ww / 2, y
    y0 = y1 - wh
    wall = self.jit(self.pick([(245, 230, 190), (250, 242, 225), (200, 222, 242), (246, 204, 200),
                               (250, 220, 160), (218, 236, 200)]), 8)
    roof = self.jit(self.pick([(200, 62, 50), (172, 82, 45), (150, 50, 65), (85, 100, 155),
                               (125, 72, 50)]), 10)
    rh = u * float(rng.uniform(0.14, 0.22))
    ov = ww * 0.1
    if rng.random() < 0.6:  # chimney, behind the roof
      cx = x + ww * float(rng.uniform(0.12, 0.3)) * (1 if rng.random() < 0.5 else -1)
      self.rect_cel(cx - ww * 0.06, y0 - rh * 0.95, cx + ww * 0.06, y0 - rh * 0.3,
                    self.jit((170, 85, 65), 8))
    self.rect_cel(x0, y0, x1, y1, wall, side=0.22)
    apex = (x, y0 - rh)
    pts = [(x0 - ov, y0), apex, (x1 + ov, y0)]
    d.polygon(pts, fill=roof)
    sh = [apex, (x1 + ov, y0), (x, y0)] if self.L[0] < 0 else [apex, (x0 - ov, y0), (x, y0)]
    d.polygon(sh, fill=_shade(roof))
    self.outline(pts)
    # door
    dw, dh = ww * 0.2, wh * 0.55
    dx = x + ww * float(rng.uniform(-0.28, 0.28))
    door = self.jit((140, 88, 50), 10)
    self.rect_cel(dx - dw / 2, y1 - dh, dx + dw / 2, y1, door, side=0.3)
    kr = max(self.iw * 0.6, dw * 0.08)
    d.ellipse((dx + dw * 0.22 - kr, y1 - dh / 2 - kr, dx + dw * 0.22 + kr, y1 - dh / 2 + kr),
              fill=(240, 200, 70))
    # windows on the side(s) away from the door
    glass = (255, 222, 105) if self.mode == "night" else self.jit((165, 215, 248), 8)
    ws = wh * 0.3
    for wx in (x0 + ww * 0.2, x1 - ww * 0.2):
      if abs(wx - dx) < dw / 2 + ws * 0.7:
        continue
      wy = y0 + wh * 0.3
      d.rectangle((wx - ws / 2, wy - ws / 2, wx + ws / 2, wy + ws / 2), fill=glass)
      d.polygon([(wx - ws / 2, wy - ws / 2), (wx + ws * 0.1, wy - ws / 2), (wx - ws / 2, wy + ws * 0.1)],
                fill=_light(glass, 0.5))
      self.outline([(wx - ws / 2, wy - ws / 2), (wx + ws / 2, wy - ws / 2),
                    (wx + ws / 2, wy + ws / 2), (wx - ws / 2, wy + ws / 2)])
      self.outline([(wx, wy - ws / 2), (wx, wy + ws / 2)], width=self.iw * 0.7, closed=False)
      self.outline([(wx - ws / 2, wy), (wx + ws / 2, wy)], width=self.iw * 0.7, closed=False)

  def tree(self, x, y, u):
    rng = self.rng
    th = u * float(rng.uniform(0.12, 0.2))
    tw = u * float(rng.uniform(0.04, 0.06))
    trunk = self.jit((128, 82, 45), 10)
    self.rect_cel(x - tw / 2, y - th, x + tw / 2, y, trunk, side=0.35)
    if self.mode == "night":
      green = (40, 95, 70)
    elif self.grass[0] > 180:  # autumn field -> autumn trees
      green = self.pick([(220, 140, 40), (200, 90, 40), (230, 185, 60)])
    else:
      green = self.pick([(70, 160, 60), (90, 178, 70), (55, 140, 75), (115, 172, 50)])
    green = self.jit(green, 14)
    if rng.random() < 0.35:  # pine: stacked split-shaded triangles
      n = 3
      top = y - th - u * 0.32
      for i in range(n):
        t0 = top + (y - th + u * 0.04 - top) * i / n * 0.85
        t1 = t0 + (y - th + u * 0.04 - top) * 0.45
        hw = u * (0.06 + 0.035 * i)
        pts = [(x, t0), (x - hw, t1), (x + hw, t1)]
        dg = _mix(green, (30, 90, 70), 0.4)
        self.d.polygon(pts, fill=dg)
        sh = [(x, t0), (x + hw, t1), (x + hw * 0.15, t1)] if self.L[0] < 0 else \
             [(x, t0), (x - hw, t1), (x - hw * 0.15, t1)]
        self.d.polygon(sh, fill=_shade(dg))
        self.outline(pts)
    else:  # round crown of 3-5 puffs
      cr = u * float(rng.uniform(0.08, 0.11))
      cy = y - th - cr * 0.6
      m = int(rng.integers(3, 6))
      circles = [(x, cy - cr * 0.5, cr, cr)]
      for i in range(m - 1):
        a = np.pi * (0.9 + 1.2 * i / max(m - 2, 1))
        circles.append((x + np.cos(a) * cr * 0.75, cy - cr * 0.3 + np.sin(a) * cr * 0.55,
                        cr * 0.75, cr * 0.75))
      self.blobs(circles, green, k=0.8, highlight=True)
      if rng.random() < 0.3 and self.mode == "day":  # apples
        for _ in range(3):
          ax = x + rng.uniform(-0.8, 0.8) * cr
          ay = cy + rng.uniform(-0.8, 0.4) * cr
          ar = cr * 0.12
          self.circle(ax, ay, ar, (225, 45, 40))

  def bush(self, x, y, u):
    rng = self.rng
    r = u * float(rng.uniform(0.035, 0.06))
    col = self.jit((60, 150, 70) if self.mode != "night" else (30, 80, 60), 14)
    circles = [(x + dx * r, y - r * 0.7 + dy * r, r, r * 0.85)
               for dx, dy in ((-0.9, 0.1), (0.0, -0.35), (0.9, 0.1))]
    self.blobs(circles, col, k=0.8)
    if rng.random() < 0.5:
      berry = self.pick([(230, 60, 80), (250, 220, 70), (250, 250, 250)])
      for _ in range(3):
        bx = x + rng.uniform(-1.3, 1.3) * r
        by = y - r * 0.8 + rng.uniform(-0.5, 0.4) * r
        self.d.ellipse((bx - r * 0.15, by - r * 0.15, bx + r * 0.15, by + r * 0.15), fill=berry)

  def flower(self, x, y, u):
    r = u * 0.012 + self.f * 0.6
    petal = self.jit(self.pick([(235, 60, 70), (250, 220, 60), (250, 150, 200), (250, 250, 250),
                                (160, 110, 230)]), 8)
    self.d.line([(x, y), (x, y - r * 2.5)], fill=_shade(self.grass, 0.6),
                width=max(1, int(self.iw * 0.7)))
    self.circle(x, y - r * 2.5, r, petal, k=0.85)
    c = r * 0.35
    self.d.ellipse((x - c, y - r * 2.5 - c, x + c, y - r * 2.5 + c), fill=(250, 200, 40))

  def char(self, x, y, u):
    rng, d = self.rng, self.d
    hgt = u * float(rng.uniform(0.26, 0.34))
    skin = self.jit(self.pick([(255, 222, 188), (242, 196, 152), (205, 150, 108),
                               (150, 100, 70)]), 6)
    cloth = self.jit(self.pick([(220, 50, 50), (45, 110, 215), (250, 200, 40), (60, 170, 80),
                                (150, 70, 190), (250, 130, 40), (240, 110, 160)]), 10)
    pants = self.jit(self.pick([(55, 70, 125), (60, 55, 65), (115, 80, 55), (40, 90, 150)]), 8)
    hair = self.jit(self.pick([(40, 30, 25), (105, 62, 32), (235, 195, 90), (190, 80, 40),
                               (60, 60, 70)]), 6)
    # legs
    leg_h = hgt * 0.26
    leg_w = hgt * 0.09
    for s in (-1, 1):
      lx = x + s * hgt * 0.07
      self.rect_cel(lx - leg_w / 2, y - leg_h, lx + leg_w / 2, y, pants, side=0.35)
      d.ellipse((lx - leg_w * 0.8, y - leg_w * 0.5, lx + leg_w * 0.8, y + leg_w * 0.35), fill=INK)
    # arms (behind the body at the shoulder)
    bw, bh = hgt * 0.34, hgt * 0.34
    by1 = y - leg_h + hgt * 0.02
    by0 = by1 - bh
    aw = hgt * 0.075
    wave = rng.random() < 0.4
    for s in (-1, 1):
      sx, sy = x + s * bw * 0.38, by0 + bh * 0.2
      if wave and s == 1:
        hx, hy = sx + s * hgt * 0.18, by0 - hgt * 0.16
      else:
        hx, hy = sx + s * hgt * 0.14, by0 + bh * 0.85
      self.thick_line([(sx, sy), (hx, hy)], aw, cloth)
      self.circle(hx, hy, aw * 0.75, skin, k=0.85)
    # body: rounded torso
    d.rounded_rectangle((x - bw / 2 - self.iw / 2, by0 - self.iw / 2, x + bw / 2 + self.iw / 2,
                         by1 + self.iw / 2), radius=bw * 0.35, fill=INK)
    d.rounded_rectangle((x - bw / 2 + self.iw / 2, by0 + self.iw / 2, x + bw / 2 - self.iw / 2,
                         by1 - self.iw / 2), radius=bw * 0.3, fill=_shade(cloth))
    off = bw * 0.2 * (1 if self.L[0] < 0 else -1)
    d.rounded_rectangle((x - bw / 2 + self.iw / 2 + max(-off, 0), by0 + self.iw / 2,
                         x + bw / 2 - self.iw / 2 - max(off, 0), by1 - self.iw / 2 - bh * 0.1),
                        radius=bw * 0.25, fill=cloth)
    # head
    hr = hgt * 0.2
    hx, hy = x, by0 - hr * 0.85
    self.circle(hx, hy, hr, skin, k=0.84)
    # hair: a cap over the top of the head, ink-outlined
    cap = (hx - hr * 1.04, hy - hr * 1.1, hx + hr * 1.04, hy + hr * 0.98)
    d.chord(cap, 180, 360, fill=INK)
    inner = (cap[0] + self.iw, cap[1] + self.iw, cap[2] - self.iw, cap[3] - self.iw)
    d.chord(inner, 182, 358, fill=hair)
    hl = (inner[0] + hr * 0.3, inner[1] + hr * 0.15, inner[2] - hr * 0.6, inner[3] - hr * 0.5)
    if self.L[0] > 0:
      hl = (inner[0] + hr * 0.6, inner[1] + hr * 0.15, inner[2] - hr * 0.3, inner[3] - hr * 0.5)
    d.chord(hl, 200, 340, fill=_light(hair, 0.3))
    # face: eyes with a glint, cheeks, smile
    er = hr * 0.13
    ey = hy + hr * 0.3
    look = rng.uniform(-0.15, 0.15) * hr
    for s in (-1, 1):
      ex = hx + s * hr * 0.38 + look
      d.ellipse((ex - er, ey - er * 1.4, ex + er, ey + er * 1.4), fill=INK)
      g = er * 0.45
      d.ellipse((ex - g * 0.2, ey - er * 0.9, ex + g * 1.2, ey - er * 0.9 + g * 1.4),
                fill=(255, 255, 255))
      cx = ex + s * hr * 0.16
      d.ellipse((cx - er * 1.2, ey + er * 1.8, cx + er * 1.2, ey + er * 2.6),
                fill=_mix(skin, (240, 110, 120), 0.45))
    mw = hr * 0.28
    d.arc((hx - mw + look, ey + er * 0.8, hx + mw + look, ey + er * 3.2), 20, 160, fill=INK,
          width=max(1, int(round(self.iw * 0.8))))


def _draw_toon(rng: np.random.Generator, size: int) -> Image.Image:
  return _Toon(rng, size).draw()
