"""More training images for the benchmarks: frames of the shared data's video clips.

The benchmarks train on 49 Kodak photos and Sintel frames and over-fit them within a few
hundred steps (held-out error rises, models end worse than grey). `../shared/data/video` has
three more clips of other films: *Big Buck Bunny* and *Caminandes* (3D animation → the
`animation` domain) and *Tears of Steel* (live action → `photos`). Every `every`-th frame of
each is added to that domain's *training* images only: the test and validation images stay the
Kodak photos and Sintel shots they were, and no clip shares a film with them.

Frames are decoded once (colorjax.video.read_video), their short side resized to `short_side`,
and written as PNG to a cache outside the project (`~/.cache/colorjax/video_frames`), since
the pipeline reads files; black or colourless frames (fades, titles) are skipped.
"""
from __future__ import annotations

import csv
import os

import numpy as np

CACHE = os.path.join(os.path.expanduser("~"), ".cache", "colorjax", "video_frames")
HELP = ("also train on every N-th frame of the data's video clips (benchmarks/video_frames.py; "
        "0 = the photos and Sintel frames only)")


def clip_domain(kind: str) -> str:
  """The benchmark domain (shared-data folder) a clip's manifest `kind` trains."""
  return "photos" if kind.startswith("live action") else "animation"


def _usable(rgb: np.ndarray) -> bool:
  """Not a fade or title card: some lightness spread and some colour."""
  from colorjax.data import decode
  return float(rgb.mean(-1).std()) >= 8.0 and not decode.is_grey(rgb, tolerance=8)


def training_frames(data_dir: str, every: int, cache_dir: str = CACHE,
                    short_side: int = 256) -> dict[str, list]:
  """{"animation": records, "photos": records}: ("file", png) records of every `every`-th
  usable frame of each clip in `data_dir`/video (none if `every` is 0 or the folder is absent).
  """
  from PIL import Image
  from colorjax import video
  out = {"animation": [], "photos": []}
  manifest = os.path.join(data_dir, "video", "manifest.csv")
  if every <= 0 or not os.path.exists(manifest):
    return out
  with open(manifest, newline="") as f:
    clips = list(csv.DictReader(f))
  for clip in clips:
    folder = os.path.join(cache_dir, f"{os.path.splitext(clip['file'])[0]}_every{every}_{short_side}")
    done = os.path.join(folder, "done")
    if not os.path.exists(done):
      os.makedirs(folder, exist_ok=True)
      for frame in video.read_video(os.path.join(data_dir, "video", clip["file"])):
        if frame.index % every or not _usable(frame.rgb):
          continue
        im = Image.fromarray(frame.rgb)
        scale = short_side / min(im.size)
        im = im.resize((round(im.width * scale), round(im.height * scale)), Image.BICUBIC)
        im.save(os.path.join(folder, f"frame_{frame.index:05d}.png"))
      open(done, "w").close()      # a partial folder (an interrupted run) is redone
    out[clip_domain(clip["kind"])] += sorted(
        ("file", os.path.join(folder, n)) for n in os.listdir(folder) if n.endswith(".png"))
  return out
