"""Hint-conditioned generator and training with simulated hints (colorjax.hints' simulation)."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from colorjax import config_lib, hints, models, state, train
from colorjax.data import pipeline
from colorjax.models import weights
from conftest import make_tiny_config


# --- The simulated-hint distribution ------------------------------------------------------


@functools.lru_cache(maxsize=None)
def many_draws(n=20000, h=64, w=96, seed=0):
  rng = np.random.default_rng(seed)
  return [hints.simulate_points(h, w, rng) for _ in range(n)]


def test_number_of_points_is_geometric_mean_7_and_none_one_time_in_eight():
  counts = np.array([len(p) for p in many_draws()])
  assert abs(counts.mean() - 7.0) < 0.15, counts.mean()
  assert abs((counts == 0).mean() - 1 / 8) < 0.01, (counts == 0).mean()
  assert abs((counts == 1).mean() - 1 / 8 * 7 / 8) < 0.01
  assert counts.min() == 0 and counts.max() > 40


def test_positions_are_around_the_centre_with_sigma_a_quarter_of_the_side():
  pts = np.concatenate([p for p in many_draws() if len(p)])
  top, left, side = pts.T
  cy, cx = top + (side - 1) // 2, left + (side - 1) // 2     # the patch centres
  # Centres well inside the crop (not moved by clipping) are the unclipped normal draws.
  inner = (top > 0) & (left > 0) & (top + side < 64) & (left + side < 96)
  assert abs(np.median(cy[inner]) - 31.5) <= 0.5 and abs(np.median(cx[inner]) - 47.5) <= 0.5
  # The interquartile range of a normal is 1.349 σ (and barely touched by the clipping).
  iqr = lambda v: np.subtract(*np.percentile(v, [75, 25]))
  assert abs(iqr(cy) / 1.349 - 64 / 4) < 0.6, iqr(cy) / 1.349
  assert abs(iqr(cx) / 1.349 - 96 / 4) < 0.8, iqr(cx) / 1.349
  # Clipped into the crop: every patch lies wholly inside it.
  assert top.min() == 0 and left.min() == 0
  assert (top + side).max() == 64 and (left + side).max() == 96


def test_patch_sides_are_uniform_on_1_to_9():
  side = np.concatenate([p for p in many_draws() if len(p)])[:, 2]
  freq = np.bincount(side, minlength=10)[1:] / len(side)
  assert side.min() == 1 and side.max() == 9
  np.testing.assert_allclose(freq, 1 / 9, atol=0.01)


def test_each_hint_is_the_mean_true_colour_over_its_patch():
  rng = np.random.default_rng(1)
  ab = rng.uniform(-1, 1, (40, 50, 2)).astype(np.float32)
  patches = np.array([[3, 4, 5], [30, 40, 1], [31, 41, 9]])
  out = hints.hint_map_from_patches(ab, patches)
  assert out.shape == (40, 50, 3) and out.dtype == np.float32
  np.testing.assert_allclose(out[3:8, 4:9, :2], np.broadcast_to(ab[3:8, 4:9].mean((0, 1)),
                                                                 (5, 5, 2)), rtol=1e-5)
  np.testing.assert_array_equal(out[30, 40, :2], ab[30, 40])
  np.testing.assert_allclose(out[31:40, 41:50, :2].reshape(-1, 2),
                             np.broadcast_to(ab[31:40, 41:50].reshape(-1, 2).mean(0), (81, 2)),
                             rtol=1e-5)
  assert out[..., 2].sum() == 25 + 1 + 81
  assert not out[out[..., 2] == 0].any()               # nothing outside the patches
  # simulate_hints: the same map as its points give.
  ab = rng.uniform(-1, 1, (32, 32, 2)).astype(np.float32)
  a, b = np.random.default_rng(5), np.random.default_rng(5)
  np.testing.assert_array_equal(hints.simulate_hints(ab, a),
                                hints.hint_map_from_patches(ab, hints.simulate_points(32, 32, b)))


def test_pipeline_hints_are_fixed_by_seed_and_position_and_only_for_hint_models():
  config = make_tiny_config()
  records = [s.train for s in train.domain_records(config).values()]
  take = lambda seed, hints_on, n=3: [next(it) for it in [iter(pipeline.train_dataset(
      records, 32, 4, seed, hints=hints_on))] for _ in range(n)]
  a, b, c = take(0, True), take(0, True), take(1, True)
  for x, y in zip(a, b):
    assert set(x) == {"L", "ab", "hints"} and x["hints"].shape == (4, 32, 32, 3)
    np.testing.assert_array_equal(x["hints"], y["hints"])
  assert any(not np.array_equal(x["hints"], z["hints"]) for x, z in zip(a, c))
  # A hint sits on its example's true colour (the mean over its patch: near it).
  x = a[0]
  m = x["hints"][..., 2] > 0
  assert m.any() and np.abs(x["hints"][..., :2][m] - x["ab"][m]).mean() < 0.1
  # The image stream is the automatic model's: hints are drawn after crop and flip.
  plain = take(0, False)
  assert set(plain[0]) == {"L", "ab"}
  for x, y in zip(a, plain):
    np.testing.assert_array_equal(x["L"], y["L"])
  # Resume: an iterator restored to a position gives the same hints from there on.
  it = iter(pipeline.train_dataset(records, 32, 4, 0, hints=True))
  next(it)
  saved = it.get_state()
  want = next(it)["hints"]
  it2 = iter(pipeline.train_dataset(records, 32, 4, 0, hints=True))
  it2.set_state(saved)
  np.testing.assert_array_equal(next(it2)["hints"], want)


def test_a_hint_model_is_validated_with_fixed_simulated_hints():
  """The kept epoch of a hint model is chosen on the task it is trained for: its validation
  batches carry simulated hints, the same at every score; an automatic model's carry none."""
  config = config_lib.finalize(make_tiny_config(**{"model.hints": True}))
  records = train.domain_records(config)["toon"].train[:6]
  a, b = (list(pipeline.eval_batches(records, 32, 4, hints=True)) for _ in range(2))
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x["hints"], y["hints"])
  assert a[1]["hints"][2:].max() == 0                          # padding: no hints
  m = np.concatenate([x["hints"][..., 2] for x in a]) > 0
  ab = np.concatenate([x["ab"] for x in a])
  hint_ab = np.concatenate([x["hints"][..., :2] for x in a])
  assert m.any() and np.abs(hint_ab[m] - ab[m]).mean() < 0.1
  assert "hints" not in next(pipeline.eval_batches(records, 32, 4))
  # validation_loss is the eval loss given those hints, not without them.
  trainer = train.Trainer(config)

  def open_hints(path, x):       # a new hint model barely reacts to hints: make it
    key = jax.tree_util.keystr(path)
    if "encoder" in key and "conv1" in key and "kernel" in key:
      return x.at[..., 1:, :].set(30 * jax.random.normal(jax.random.key(0), x[..., 1:, :].shape))
    return x
  st = trainer.init(0)
  st = st.replace(g=st.g.replace(params=jax.tree_util.tree_map_with_path(open_hints, st.g.params)))

  def mean_l1(with_hints):
    total = count = 0.0
    for batch in pipeline.eval_batches(records, 32, 4, hints=with_hints):
      _, l1 = trainer.eval_step(st.g.params, st.g.batch_stats, trainer.shard_batch(batch, True))
      total += float(np.sum(np.asarray(l1) * batch["mask"]))
      count += float(batch["mask"].sum())
    return total / count
  loss = train.validation_loss(trainer, st, records, config)
  assert loss == pytest.approx(mean_l1(True), rel=1e-7)
  assert abs(mean_l1(True) - mean_l1(False)) > 1e-5 * loss      # the hints change the loss


# --- The generator's hint input -------------------------------------------------------------


def tiny_models(hints_on):
  config = config_lib.finalize(make_tiny_config(**{"model.hints": hints_on}))
  return config, models.build_models(config)[0]


def test_hint_model_has_four_input_channels_and_runs_without_hints():
  config, g = tiny_models(True)
  L = jnp.zeros((2, 32, 32, 1))
  v = g.init(jax.random.key(0), L)
  assert v["params"]["encoder"]["conv1"]["kernel"].shape == (7, 7, 4, 8)
  none = g.apply(v, L, train=False)
  zeros = g.apply(v, L, hints=jnp.zeros((2, 32, 32, 3)), train=False)
  np.testing.assert_array_equal(none, zeros)       # automatic mode = no hint anywhere
  with pytest.raises(ValueError, match=r"hints \(2, 32, 32, 2\)"):
    g.apply(v, L, hints=jnp.zeros((2, 32, 32, 2)), train=False)


def test_model_without_hint_inputs_rejects_hints():
  config, g = tiny_models(False)
  assert not config.model.hints
  L = jnp.zeros((1, 32, 32, 1))
  v = g.init(jax.random.key(0), L)
  assert v["params"]["encoder"]["conv1"]["kernel"].shape == (7, 7, 1, 8)
  with pytest.raises(ValueError, match="without hint inputs.*config.model.hints=False"):
    g.apply(v, L, hints=jnp.zeros((1, 32, 32, 3)), train=False)


def test_configs_say_who_takes_hints():
  from configs import default, demo
  from configs import hints as hints_config
  assert default.get_config().model.hints is False
  assert hints_config.get_config().model.hints is True
  assert demo.get_config().model.hints is True
  # Real size, shapes only: the 4-channel stem adds 3 × 7 × 7 × 64 parameters.
  count = lambda c: sum(int(np.prod(x.shape)) for x in
                        jax.tree.leaves(state.abstract_state(config_lib.finalize(c)).g.params))
  assert count(default.get_config()) == 24_430_242
  assert count(hints_config.get_config()) == 24_430_242 + 3 * 7 * 7 * 64


def test_old_checkpoint_config_without_the_key_builds_an_automatic_model():
  import ml_collections
  config = make_tiny_config().to_dict()
  del config["model"]["hints"]
  g, _ = models.build_models(ml_collections.ConfigDict(config))
  assert g.hints is False


def test_encoder_import_sums_rgb_into_L_and_zeroes_the_hint_kernels(tmp_path):
  from test_weights import RESNET10, numpy_state_dict
  sd = numpy_state_dict(RESNET10, width=8)
  path = str(tmp_path / "r10.npz")
  np.savez(path, **sd)
  config = config_lib.finalize(make_tiny_config(**{"model.hints": True,
                                                   "model.encoder_weights": path}))
  s = state.init_state(config, jax.random.key(0))
  kernel = np.asarray(s.g.params["encoder"]["conv1"]["kernel"])
  assert kernel.shape == (7, 7, 4, 8)
  want = np.transpose(sd["conv1.weight"].sum(1, keepdims=True), (2, 3, 1, 0))
  np.testing.assert_allclose(kernel[:, :, :1], want, rtol=1e-6)
  np.testing.assert_array_equal(kernel[:, :, 1:], 0)
  # So before training the hint channels change nothing.
  g = models.build_models(config)[0]
  v = {"params": s.g.params, "batch_stats": s.g.batch_stats}
  L = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (1, 32, 32, 1)), jnp.float32)
  h = jnp.asarray(np.random.default_rng(1).uniform(-1, 1, (1, 32, 32, 3)), jnp.float32)
  np.testing.assert_allclose(g.apply(v, L, hints=h), g.apply(v, L), atol=1e-6)


# --- Training with hints ----------------------------------------------------------------------


def flat_batch(colours, rng):
  """Images of one flat lightness (L* = 50), each in its own uniform colour `colours` [B,2]
  (normalised ab), with a 7×7 hint of that colour at a random place."""
  b = len(colours)
  ab = np.broadcast_to(colours[:, None, None, :], (b, 32, 32, 2)).astype(np.float32)
  h = np.zeros((b, 32, 32, 3), np.float32)
  for i in range(b):
    y, x = rng.integers(0, 26, 2)
    h[i, y:y + 7, x:x + 7] = (*colours[i], 1.0)
  return {"L": np.zeros((b, 32, 32, 1), np.float32), "ab": ab, "hints": h}


def test_tiny_hint_model_learns_to_follow_a_hints_colour():
  config = config_lib.finalize(make_tiny_config(**{"model.hints": True, "optim.lr_g": 2e-3}))
  trainer = train.Trainer(config)
  st = trainer.init(0)
  rng = np.random.default_rng(0)
  draw = lambda: flat_batch(rng.uniform(-0.6, 0.6, (8, 2)).astype(np.float32), rng)
  losses = []
  for _ in range(STEPS):    # L1 only (the warm-up step): the GAN adds nothing to this test
    st, m = trainer.warmup_step(st, trainer.shard_batch(draw()))
    losses.append(float(m["g_l1"]))
  # The grey L alone cannot tell the colours apart: only the hints can bring the loss down.
  assert np.mean(losses[-10:]) < 0.8 * np.mean(losses[:3]), losses
  v = {"params": st.g.params, "batch_stats": st.g.batch_stats}
  apply = jax.jit(lambda L, h=None: trainer.g_model.apply(v, L, hints=h, train=False))
  batch = draw()                                   # colours and places it never saw
  colours = batch["ab"][:, 0, 0]
  at_hint = lambda out, h: np.stack([o[m[..., 2] > 0].mean(0) for o, m in zip(out, h)])
  with_hints = at_hint(np.asarray(apply(batch["L"], batch["hints"])), batch["hints"])
  without = at_hint(np.asarray(apply(batch["L"])), batch["hints"])
  err_hint, err_none = np.abs(with_hints - colours).mean(), np.abs(without - colours).mean()
  print(f"L1 {np.mean(losses[:3]):.3f} -> {np.mean(losses[-10:]):.3f}; error at the hints "
        f"{err_hint:.3f} with them, {err_none:.3f} without")
  assert err_hint < 0.5 * err_none, (err_hint, err_none)
  # Give image 0 the hint colour of image 1: its output there moves to that colour.
  swapped = batch["hints"].copy()
  swapped[0, ..., :2] = np.where(swapped[0, ..., 2:] > 0, colours[1], 0)
  out = at_hint(np.asarray(apply(batch["L"], swapped)), swapped)[0]
  assert np.abs(out - colours[1]).mean() < 0.5 * np.abs(out - colours[0]).mean(), (out, colours)


STEPS = 150


BASE = {"model.hints": True, "data.train_size": 16, "checkpoint_every_steps": 0}


@pytest.fixture(scope="module")
def hint_run(tmp_path_factory):
  """A tiny hint model trained for 2 epochs (8 steps) without interruption."""
  workdir = str(tmp_path_factory.mktemp("hints") / "ref")
  train.train_and_evaluate(make_tiny_config(**BASE, num_epochs=2), workdir)
  return workdir


def test_resume_with_hints_ends_bit_identical(hint_run, tmp_path):
  from colorjax import checkpoints
  resumed = str(tmp_path / "resumed")
  train.train_and_evaluate(make_tiny_config(**BASE, num_epochs=1), resumed)
  train.train_and_evaluate(make_tiny_config(**BASE, num_epochs=2), resumed)
  abstract = train.Trainer(config_lib.finalize(make_tiny_config(**BASE))).abstract_state()
  load = lambda d: jax.tree.map(np.asarray, checkpoints.restore(
      checkpoints.manager(d, read_only=True), 8, abstract)[0])
  a, b = load(hint_run), load(resumed)
  for (path, x), y in zip(jax.tree_util.tree_flatten_with_path(a)[0], jax.tree.leaves(b)):
    np.testing.assert_array_equal(x, y, err_msg=jax.tree_util.keystr(path))
  # The hints reached G: the stem's hint-channel kernels moved from their initial values.
  init = train.Trainer(config_lib.finalize(make_tiny_config(**BASE))).init(0)
  k0 = np.asarray(init.g.params["encoder"]["conv1"]["kernel"])[..., 1:, :]
  assert not np.array_equal(a.g.params["encoder"]["conv1"]["kernel"][..., 1:, :], k0)
  # The first epoch's validation samples were kept for the report (Figure 3).
  with np.load(train.samples_path(hint_run, 1)) as f:
    assert f["L"].shape == (4, 32, 32, 1) and f["ab"].shape == (4, 32, 32, 2)
    assert len(f["image"]) == 4


def test_eval_by_number_of_hints_writes_its_section(hint_run, capsys):
  import json
  import types
  from colorjax import cli
  flags = types.SimpleNamespace(workdir=hint_run, eval_dirs=[], step=None, hints="0,2,5")
  assert cli.run("eval", None, flags) == 0
  with open(f"{hint_run}/eval.json") as f:
    report = json.load(f)
  assert "toon" in report["domains"]               # the plain evaluation is kept
  table = report["hints"]
  assert table["counts"] == [0, 2, 5] and table["takes_hints"] is True
  assert set(table["methods"]) == {"propagation", "model", "model+propagation"}
  cells = table["methods"]
  for method in cells:
    for n in ("0", "2", "5"):
      cell = cells[method]["toon"][n]
      assert cell["n"] == 4 and all(np.isfinite(cell[k]) for k in ("delta_e", "ssim", "psnr"))
  # Without hints, propagation changes nothing; hints sampled from the truth help propagation.
  assert cells["model+propagation"]["toon"]["0"] == cells["model"]["toon"]["0"]
  assert cells["propagation"]["toon"]["5"]["delta_e"] < cells["propagation"]["toon"]["0"]["delta_e"]
  out = capsys.readouterr().out
  assert "model+propagation" in out and "hints section" in out
  flags.hints = "0,two"
  assert cli.run("eval", None, flags) == 2
  assert "--hints=0,two" in capsys.readouterr().err
