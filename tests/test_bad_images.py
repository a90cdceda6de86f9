"""A dataset folder full of broken and odd files: each bad one is skipped, named and counted.

The files are real: zero bytes, truncated JPEG/PNG, text named .jpg, greyscale, RGBA, CMYK,
16-bit, palette, 1×1, smaller than the crop, a decompression bomb, EXIF-rotated, no
permission, a broken symbolic link, a non-image file.
"""
import json
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
from PIL import Image

from colorjax import train
from colorjax.data import decode, sources
from colorjax.logs import read_metrics
from conftest import ROOT, make_tiny_config

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def png_bytes(width, height, bit_depth, colour_type, raw_rows: bytes) -> bytes:
  """A PNG written by hand (PIL cannot write 16-bit RGB, nor lie about its size)."""
  def chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data +
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
  ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
  return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw_rows))
          + chunk(b"IEND", b""))


def colour(h=40, w=48, seed=0):
  return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


def make_folder(root):
  """(folder, {name: expected status}) with 10 good colour images and every bad kind."""
  d = root / "frames"
  (d / "sub").mkdir(parents=True)
  expect = {}

  def save(name, im, status, **kw):
    im.save(d / name, **kw)
    expect[name] = status

  for i in range(10):
    save(f"good{i:02d}.png" if i % 2 else f"good{i:02d}.jpg", Image.fromarray(colour(seed=i)), "ok")
  (d / "empty.jpg").write_bytes(b"")
  expect["empty.jpg"] = "bad"
  full = (d / "good00.jpg").read_bytes()
  (d / "truncated.jpg").write_bytes(full[:len(full) // 2])
  expect["truncated.jpg"] = "bad"
  full = (d / "good01.png").read_bytes()
  (d / "truncated.png").write_bytes(full[:len(full) // 2])
  expect["truncated.png"] = "bad"
  (d / "notes.jpg").write_text("this is not a JPEG\n")
  expect["notes.jpg"] = "bad"
  grey = np.repeat(colour()[..., :1], 3, axis=2)
  save("grey_rgb.png", Image.fromarray(grey), "grey")
  save("grey_L.jpg", Image.fromarray(grey[..., 0]), "grey")
  rgba = np.concatenate([colour(), np.full((40, 48, 1), 128, np.uint8)], axis=2)
  save("rgba.png", Image.fromarray(rgba, "RGBA"), "ok")
  save("cmyk.jpg", Image.fromarray(colour()).convert("CMYK"), "ok")
  rows16 = b"".join(b"\x00" + (colour(1, 16, seed=r).astype(np.uint16) * 257).astype(">u2").tobytes()
                    for r in range(12))
  (d / "rgb16.png").write_bytes(png_bytes(16, 12, 16, 2, rows16))
  expect["rgb16.png"] = "ok"
  save("grey16.png", Image.fromarray((grey[..., 0].astype(np.uint16) * 257)), "grey")
  save("palette.png", Image.fromarray(colour()).convert("P", palette=Image.ADAPTIVE), "ok")
  save("one_pixel.png", Image.new("RGB", (1, 1), (255, 0, 0)), "bad")
  save("tiny.png", Image.fromarray(colour(6, 9)), "ok")                 # upscaled to the crop
  # 30000×30000 = 9e8 px, beyond PIL's limit (2 × 89.5e6); the file itself is 100 bytes.
  (d / "bomb.png").write_bytes(png_bytes(30000, 30000, 8, 2, b"\x00" * 16))
  expect["bomb.png"] = "bad"
  exif = Image.Exif()
  exif[0x0112] = 6                                                      # rotate 90° on display
  save("sub/rotated.jpg", Image.fromarray(colour(20, 60)), "ok", exif=exif)
  os.symlink(d / "missing.png", d / "sub" / "broken_link.png")
  expect["sub/broken_link.png"] = "bad"
  if not IS_ROOT:        # root reads through chmod 000, so the case only exists for users
    save("locked.png", Image.fromarray(colour()), "bad")
    os.chmod(d / "locked.png", 0)
  (d / "README.txt").write_text("a non-image file: never listed")
  (d / "data.bin").write_bytes(os.urandom(64))
  return d, expect


def test_every_bad_kind_is_classified_with_a_reason(tmp_path):
  folder, expect = make_folder(tmp_path)
  paths = sources.list_images(str(folder))
  assert sorted(os.path.relpath(p, folder) for p in paths) == sorted(expect)
  cache = str(tmp_path / "scan.json")
  status = decode.scan_files(paths, 32, cache)
  got = {os.path.relpath(p, folder): s for p, (s, _) in status.items()}
  assert got == expect
  reasons = {os.path.relpath(p, folder): why for p, (_, why) in status.items()}
  assert "0 bytes" in reasons["empty.jpg"]
  assert "truncated" in reasons["truncated.jpg"] or "cannot decode" in reasons["truncated.jpg"]
  assert "not an image" in reasons["notes.jpg"]
  assert "decompression-bomb" in reasons["bomb.png"]
  assert "broken symbolic link" in reasons["sub/broken_link.png"]
  assert "too small" in reasons["one_pixel.png"]
  assert all(why.startswith(str(folder)) for why in reasons.values() if why)
  assert all("\n" not in why for why in reasons.values())
  # EXIF orientation is applied: 60×20 stored, 20×60 shown.
  assert decode.open_rgb(str(folder / "sub" / "rotated.jpg")).size == (20, 60)
  # The scan is cached by path, mtime and size; a changed file is checked again.
  assert json.load(open(cache))["files"]
  Image.fromarray(colour()).save(folder / "empty.jpg")
  again = decode.scan_files(paths, 32, cache)
  assert again[str(folder / "empty.jpg")][0] == "ok"
  assert again[str(folder / "notes.jpg")] == status[str(folder / "notes.jpg")]


def test_training_skips_bad_files_logs_and_counts_them(tmp_path, caplog):
  folder, expect = make_folder(tmp_path)
  config = make_tiny_config(**{"data.domains": ("cartoon",), "data.cartoon_dir": str(folder),
                               "data.train_size": 0, "data.val_size": 2, "data.test_size": 0,
                               "batch_size": 2, "max_steps_per_epoch": 2})
  workdir = str(tmp_path / "run")
  with caplog.at_level("WARNING"):
    summary = train.train_and_evaluate(config, workdir)
  n_bad = sum(s == "bad" for s in expect.values())
  n_grey = sum(s == "grey" for s in expect.values())
  assert summary["bad_images"] == n_bad and summary["grey_images"] == n_grey
  assert np.isfinite(summary["val_loss"])
  skipped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipping ")]
  for name, status in expect.items():
    lines = [m for m in skipped if m.startswith(f"skipping {folder / name}:")]
    assert len(lines) == (status != "ok"), (name, lines)
  records = read_metrics(workdir)
  data = [r for r in records if r["type"] == "data"][0]
  assert data["bad_images"] == n_bad and data["grey_images"] == n_grey
  assert data["train_images"] + data["val_images"] == len(expect) - n_bad - n_grey
  epoch = [r for r in records if r["type"] == "epoch"][-1]
  assert epoch["bad_images"] == n_bad and epoch["grey_images"] == n_grey


def run_cli(*extra):
  args = [sys.executable, "launch.py", "--config=configs/demo.py", "--config.image_size=32",
          "--config.batch_size=2", "--config.model.encoder=resnet10",
          "--config.model.encoder_width=8", "--config.model.decoder_widths=(16,16,8,8,8)",
          "--config.disc.width=8", "--config.data.domains=('cartoon',)",
          "--config.data.train_size=0", "--config.data.val_size=2", "--config.data.test_size=0",
          "--config.num_epochs=1", "--config.pretrain_epochs=0", *extra]
  return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=240,
                        env={**os.environ, "JAX_PLATFORMS": "cpu"})


def error_line(proc):
  assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
  lines = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
  assert len(lines) == 1, proc.stderr[-3000:]
  return lines[0]


def test_on_bad_image_error_stops_at_the_first_with_exit_code_2(tmp_path):
  folder, _ = make_folder(tmp_path)
  proc = run_cli(f"--config.data.cartoon_dir={folder}", "--config.data.on_bad_image=error",
                 f"--workdir={tmp_path / 'run'}")
  assert proc.returncode == 2
  line = error_line(proc)
  assert str(folder) in line and "on_bad_image='error'" in line, line
  assert not (tmp_path / "run" / "checkpoints").exists()


def test_missing_or_unusable_folder_is_one_line_before_compiling(tmp_path):
  proc = run_cli(f"--config.data.cartoon_dir={tmp_path / 'nope'}", f"--workdir={tmp_path / 'a'}")
  assert proc.returncode == 2 and "no such directory" in error_line(proc)
  broken = tmp_path / "broken"
  broken.mkdir()
  for i in range(6):
    (broken / f"x{i}.jpg").write_bytes(b"" if i % 2 else b"<html>not found</html>")
  Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(broken / "black.png")
  proc = run_cli(f"--config.data.cartoon_dir={broken}", f"--workdir={tmp_path / 'b'}")
  assert proc.returncode == 2
  line = error_line(proc)
  assert "no usable training image" in line and "6 unusable, 1 greyscale" in line, line
  assert not (tmp_path / "b" / "checkpoints").exists()
