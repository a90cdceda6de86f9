"""Vivid colour (issue 16): a*b* bins, soft encoding, rebalancing, annealed mean, the
classification head, the colour losses in the GAN step, the run's class prior, config errors."""
import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from colorjax import ab_bins, color, config_lib, losses, models, train
from conftest import ROOT, make_tiny_config

HALF_DIAGONAL = 5.0 * np.sqrt(2.0)


def vivid_tiny(**overrides):
  return make_tiny_config(**{"loss.kind": "classification", "loss.l1_weight": 0.0, **overrides})


# ---- bins, soft encoding, rebalancing, annealed mean -------------------------------------------

def test_bins_cover_the_srgb_gamut():
  c = ab_bins.centers()
  assert c.shape == (262, 2) and ab_bins.num_bins() == 262
  np.testing.assert_array_equal(c % 10, 0)                    # a 10-unit grid
  assert np.all(np.abs(c) <= 110)                             # decoded ab/110 stays in [-1, 1]
  rng = np.random.default_rng(7)
  # Fresh samples (not the lattice the bins came from): inside the cube and on its faces,
  # where the gamut's extreme a*b* lie.
  inside = rng.random((200_000, 3))
  faces = rng.random((60_000, 3))
  faces[np.arange(60_000), rng.integers(0, 3, 60_000)] = rng.integers(0, 2, 60_000)
  ab = color.rgb_to_lab(np.concatenate([inside, faces]))[:, 1:]
  nearest = ab_bins.nearest_bin(ab)
  dist = np.linalg.norm(ab - c[nearest], axis=1)
  assert dist.max() <= HALF_DIAGONAL, dist.max()
  # nearest_bin is the true nearest centre
  some = ab[:500]
  brute = np.linalg.norm(some[:, None] - c[None], axis=2).argmin(1)
  np.testing.assert_array_equal(nearest[:500], brute)


def test_soft_encoding_is_five_nearest_gaussian_weights_summing_to_one():
  rng = np.random.default_rng(0)
  ab = color.rgb_to_lab(rng.random((512, 3)))[:, 1:].astype(np.float32)
  z, nearest = jax.jit(ab_bins.soft_encode)(jnp.asarray(ab))
  z, nearest = np.asarray(z), np.asarray(nearest)
  np.testing.assert_allclose(z.sum(-1), 1.0, rtol=1e-5)
  assert np.all((z > 0).sum(-1) == 5)
  c = ab_bins.centers()
  d2 = ((ab[:, None] - c[None]) ** 2).sum(-1)
  order = np.argsort(d2, axis=1)
  np.testing.assert_array_equal(nearest, order[:, 0])
  for i in range(0, 512, 97):                      # the 5 nearest, weighted exp(-d²/2σ²)
    idx = order[i, :5]
    want = np.exp(-d2[i, idx] / (2 * 5.0 ** 2))
    np.testing.assert_allclose(z[i, idx], want / want.sum(), rtol=1e-4, atol=1e-7)
  # Ties: black (a*b* = 0) is its own centre and the 4 at distance 10, not more.
  z0, _ = ab_bins.soft_encode(jnp.zeros((1, 2)))
  kept = ab_bins.centers()[np.flatnonzero(np.asarray(z0)[0])]
  np.testing.assert_array_equal(np.abs(kept).sum(1), [10, 10, 0, 10, 10])


def _dense(bins, z):
  out = np.zeros((*z.shape[:-1], ab_bins.num_bins()), np.float32)
  np.put_along_axis(out, bins, 0.0, axis=-1)        # padding cells point at bin 0 with z = 0
  np.add.at(out.reshape(-1, out.shape[-1]),
            (np.repeat(np.arange(z.shape[0]), z.shape[1]), bins.ravel()), z.ravel())
  return out


def test_local_soft_encoding_equals_the_dense_one_on_srgb_colours():
  rng = np.random.default_rng(3)
  rgb = rng.random((4000, 3))
  rgb[:500, rng.integers(0, 3, 500)] = rng.integers(0, 2, (500, 1))   # gamut faces
  ab = color.rgb_to_lab(rgb)[:, 1:]
  # grey (ties among 4 neighbours at 10), a cell corner (4 tied nearest), gamut extremes
  ab = np.concatenate([ab, [[0, 0], [5, 5], [-5, 15]],
                       color.rgb_to_lab(np.eye(3))[:, 1:]]).astype(np.float32)
  bins, z, nearest, exact = map(np.asarray, jax.jit(ab_bins.soft_encode_local)(jnp.asarray(ab)))
  z_dense, nearest_dense = map(np.asarray, jax.jit(ab_bins.soft_encode)(jnp.asarray(ab)))
  assert exact and bins.shape == z.shape == (len(ab), 25)
  np.testing.assert_array_equal(nearest, nearest_dense)
  np.testing.assert_allclose(_dense(bins, z), z_dense, atol=1e-6)


def test_cross_entropy_takes_the_dense_path_where_the_local_encoding_is_not_exact():
  rng = np.random.default_rng(4)
  logits = jnp.asarray(rng.normal(size=(2, 3, 4, ab_bins.num_bins())), jnp.float32)
  ab = color.rgb_to_lab(rng.random((2, 3, 4, 3)))[..., 1:] / 110.0
  far = ab.copy()
  far[0, 0, 0] = (1.6, -1.6)                         # 176, -176: no bin within the window
  w = jnp.asarray(rng.uniform(0.5, 2.0, ab_bins.num_bins()), jnp.float32)
  assert not ab_bins.soft_encode_local(jnp.asarray(far * 110.0))[3]
  for target in (ab, far):
    target = jnp.asarray(target, jnp.float32)
    loss = {local: jax.value_and_grad(losses.rebalanced_cross_entropy)(logits, target, w,
                                                                        local=local)
            for local in (True, False)}
    np.testing.assert_allclose(loss[True][0], loss[False][0], rtol=1e-6)
    np.testing.assert_allclose(loss[True][1], loss[False][1], rtol=1e-5, atol=1e-9)


def test_rebalancing_weights_have_mean_one_under_the_smoothed_prior():
  rng = np.random.default_rng(1)
  prior = rng.random(ab_bins.num_bins()) ** 4          # skewed, some bins nearly empty
  prior /= prior.sum()
  w = ab_bins.rebalance_weights(prior, lam=0.5, sigma=5.0)
  p = ab_bins.smooth_prior(prior, 5.0)
  assert p.sum() == pytest.approx(1.0) and np.all(p > 0)
  assert float((p * w).sum()) == pytest.approx(1.0, rel=1e-5)
  assert w[np.argmin(p)] > 1.0 > w[np.argmax(p)]      # rare colours weigh more
  np.testing.assert_allclose(ab_bins.rebalance_weights(prior, lam=1.0), 1.0, rtol=1e-5)


def test_annealed_mean_is_the_expectation_at_t1_and_the_mode_as_t_goes_to_0():
  rng = np.random.default_rng(2)
  logits = jnp.asarray(rng.normal(0, 3, (6, ab_bins.num_bins())), jnp.float32)
  c = ab_bins.centers().astype(np.float64)
  p = np.asarray(jax.nn.softmax(logits), np.float64)
  np.testing.assert_allclose(ab_bins.annealed_mean(logits, 1.0), p @ c, atol=1e-3)
  mode = c[np.asarray(logits).argmax(-1)]
  np.testing.assert_allclose(ab_bins.annealed_mean(logits, 1e-3), mode, atol=1e-3)


def test_class_prior_of_records_counts_pixels_in_their_bins(tmp_path):
  from PIL import Image
  for i, rgb in enumerate(((200, 30, 30), (30, 30, 200))):
    Image.fromarray(np.full((40, 40, 3), rgb, np.uint8)).save(tmp_path / f"{i}.png")
  records = [("file", str(tmp_path / f"{i}.png")) for i in range(2)]
  prior, images, pixels = ab_bins.prior_from_records(records, 32)
  assert images == 2 and pixels == 2 * 32 * 32 and prior.sum() == pytest.approx(1.0)
  want = ab_bins.nearest_bin(color.rgb_to_lab(np.array([[200, 30, 30], [30, 30, 200]]) / 255.0)[:, 1:])
  assert set(np.flatnonzero(prior)) == set(want) and np.allclose(prior[want], 0.5)


# ---- the generator head ------------------------------------------------------------------------

def _param_count(config) -> int:
  g, _ = models.build_models(config)
  shapes = jax.eval_shape(lambda: g.init(jax.random.key(0), jnp.zeros((1, 256, 256, 1))))
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes["params"]))


def test_full_size_classification_head_has_k_logits():
  from configs import default, vivid
  recipe, bins = _param_count(default.get_config()), _param_count(vivid.get_config())
  assert recipe == 24_430_242
  # Only the head changes: a 3×3 conv from 16 channels to 262 logits instead of 2 (+ biases).
  assert bins - recipe == (16 * 9 + 1) * (262 - 2) == 37_700
  g, _ = models.build_models(vivid.get_config())
  L = jax.ShapeDtypeStruct((2, 256, 256, 1), jnp.float32)
  v = jax.eval_shape(g.init, jax.random.key(0), L)
  assert jax.eval_shape(g.apply, v, L).shape == (2, 256, 256, 2)
  logits = jax.eval_shape(lambda v, L: g.apply(v, L, return_logits=True), v, L)
  assert logits.shape == (2, 256, 256, 262) and logits.dtype == jnp.float32


def test_decoded_output_is_the_annealed_mean_in_unit_range():
  config = config_lib.finalize(vivid_tiny())
  g, _ = models.build_models(config)
  L = jnp.asarray(np.random.default_rng(3).uniform(-1, 1, (2, 32, 32, 1)), jnp.float32)
  v = jax.jit(g.init)(jax.random.key(0), L)
  ab, logits = jax.jit(lambda v, L: (g.apply(v, L), g.apply(v, L, return_logits=True)))(v, L)
  np.testing.assert_allclose(ab, ab_bins.annealed_mean(logits, 0.38) / 110.0, atol=1e-6)
  assert ab.shape == (2, 32, 32, 2) and float(jnp.abs(ab).max()) <= 1.0


# ---- losses in the GAN step ------------------------------------------------------------------

def test_colourfulness_gap_has_finite_gradients_even_for_grey_predictions():
  rng = np.random.default_rng(4)
  L = jnp.asarray(rng.uniform(-1, 1, (2, 16, 16, 1)), jnp.float32)
  ab = jnp.asarray(rng.uniform(-0.3, 0.3, (2, 16, 16, 2)), jnp.float32)
  grey = jnp.zeros_like(ab)
  gap, grad = jax.value_and_grad(losses.colorfulness_gap, argnums=1)(L, grey, ab)
  assert float(gap) > 5 and bool(jnp.isfinite(grad).all())
  # one step against the gradient makes the prediction more colourful
  assert float(losses.colorfulness_gap(L, grey - 1e-3 * grad, ab)) < float(gap)


@pytest.fixture(scope="module")
def vivid_trainer():
  config = config_lib.finalize(vivid_tiny(**{"optim.lr_g": 1e-2, "loss.colorfulness_weight": 0.1}))
  prior = np.full(ab_bins.num_bins(), 1.0 / ab_bins.num_bins())
  return train.Trainer(config, ab_prior=prior)


def _fixed_batch(config, n=4):
  from colorjax.data import pipeline
  splits = train.domain_records(config)
  return next(iter(pipeline.train_dataset([splits["toon"].train], config.image_size, n, seed=0)))


def test_tiny_vivid_model_overfits_a_fixed_batch(vivid_trainer):
  """Classification head + rebalanced CE + colourfulness gap + GAN: every term falls."""
  state = vivid_trainer.init(0)
  batch = vivid_trainer.shard_batch(_fixed_batch(vivid_trainer.config))
  trace = {"g_ce": [], "g_l1": [], "g_colorfulness_gap": []}
  for _ in range(50):
    state, metrics = vivid_trainer.gan_step(state, batch)
    assert all(np.isfinite(float(v)) for v in metrics.values()), metrics
    for k in trace:
      trace[k].append(float(metrics[k]))
  assert {"d_loss", "g_adv"} <= set(metrics)
  first, last = ({k: np.mean(v[s]) for k, v in trace.items()} for s in (slice(0, 5), slice(-5, None)))
  assert first["g_ce"] > 5.0 and last["g_ce"] < 0.8 * first["g_ce"], trace["g_ce"]   # ln 262 = 5.57
  assert last["g_l1"] < 0.85 * first["g_l1"], trace["g_l1"]
  assert last["g_colorfulness_gap"] < 0.5 * first["g_colorfulness_gap"], trace["g_colorfulness_gap"]


def test_vivid_step_runs_in_bfloat16_with_float32_losses():
  config = config_lib.finalize(vivid_tiny(dtype="bfloat16"))
  trainer = train.Trainer(config)
  state, metrics = trainer.gan_step(trainer.init(0), trainer.shard_batch(_fixed_batch(config)))
  assert all(v.dtype == jnp.float32 and np.isfinite(float(v)) for v in metrics.values())
  assert jax.tree.leaves(state.g.params)[0].dtype == jnp.float32


_MULTI_DEVICE = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, "tests")
    import jax, numpy as np
    from jax.sharding import Mesh
    from conftest import make_tiny_config
    from colorjax import ab_bins, config_lib, train
    from colorjax.data import pipeline
    config = config_lib.finalize(make_tiny_config(**{"loss.kind": "classification",
        "loss.l1_weight": 0.0, "loss.colorfulness_weight": 0.1, "batch_size": 8}))
    recs = [s.train for s in train.domain_records(config).values()]
    batch = next(iter(pipeline.train_dataset(recs, config.image_size, 8, seed=0)))
    prior = ab_bins.prior_from_records(recs[0], config.image_size)[0]
    out = {}
    for name, devs in (("one", jax.devices()[:1]), ("all", jax.devices())):
      t = train.Trainer(config, Mesh(np.array(devs), ("data",)), ab_prior=prior)
      state, m = t.gan_step(t.init(0), t.shard_batch(batch))
      out[name] = {"m": {k: float(v) for k, v in m.items()},
                   "head": np.asarray(state.g.params["head"]["kernel"]).ravel()[:50].tolist()}
    out["devices"] = jax.device_count()
    print(json.dumps(out))
""")


def test_vivid_step_is_the_same_on_one_and_four_devices():
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
             JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
  proc = subprocess.run([sys.executable, "-c", _MULTI_DEVICE], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  assert out["devices"] == 4
  for k, v in out["one"]["m"].items():
    assert out["all"]["m"][k] == pytest.approx(v, rel=1e-4, abs=1e-5), k
  np.testing.assert_allclose(out["all"]["head"], out["one"]["head"], rtol=1e-4, atol=1e-6)


# ---- the run: class prior stored with it, resume ---------------------------------------------

def test_vivid_run_stores_its_prior_and_resumes_without_recomputing(tmp_path, monkeypatch):
  workdir = str(tmp_path / "vivid")
  config = vivid_tiny(num_epochs=1)
  train.train_and_evaluate(config, workdir)
  path = os.path.join(workdir, ab_bins.PRIOR_FILE)
  stored = json.load(open(path))
  assert stored["bins"] == 262 and stored["images"] == 16
  assert sum(stored["prior"]) == pytest.approx(1.0)

  def recompute(*a, **k):
    raise AssertionError("a resume must reuse the stored prior")
  monkeypatch.setattr(ab_bins, "prior_from_records", recompute)
  seen = []
  real = train.Trainer.__init__
  monkeypatch.setattr(train.Trainer, "__init__",
                      lambda self, c, mesh=None, ab_prior=None: (seen.append(ab_prior),
                                                                 real(self, c, mesh, ab_prior))[1])
  summary = train.train_and_evaluate(vivid_tiny(num_epochs=2), workdir)
  assert summary["epoch"] == 2 and np.isfinite(summary["val_loss"])
  np.testing.assert_array_equal(seen[0], stored["prior"])
  # Inference gets decoded ab in [-1, 1] from the classification checkpoint.
  import colorjax
  colorizer = colorjax.load(workdir)
  rgb = colorizer(np.random.default_rng(0).integers(0, 255, (40, 56, 3), np.uint8))
  assert rgb.shape == (40, 56, 3) and rgb.dtype == np.uint8


# ---- config errors --------------------------------------------------------------------------------

@pytest.mark.parametrize("key,value,words", [
    ("loss.kind", "bogus", "config.loss.kind='bogus': expected one of l1, classification"),
    ("loss.temperature", 0.0, "config.loss.temperature=0.0: must be > 0"),
    ("loss.rebalance_lambda", 1.5, "config.loss.rebalance_lambda=1.5: must be in [0, 1]"),
    ("loss.colorfulness_weight", -1.0, "config.loss.colorfulness_weight=-1.0: must be a number >= 0"),
    ("loss.class_weight", 0.0, "config.loss.class_weight=0 with config.loss.kind='classification'"),
])
def test_loss_config_errors_name_the_option(key, value, words):
  config = config_lib.finalize(vivid_tiny(**{key: value}))
  with pytest.raises(config_lib.ConfigError) as e:
    config_lib.validate(config)
  assert words in str(e.value) and "\n" not in str(e.value)


def test_recipe_without_any_colour_term_is_refused():
  config = config_lib.finalize(make_tiny_config(**{"loss.l1_weight": 0.0}))
  with pytest.raises(config_lib.ConfigError, match="nothing but the discriminator"):
    config_lib.validate(config)


def test_bad_loss_option_on_the_command_line_is_one_line_exit_2(tmp_path):
  args = [sys.executable, "launch.py", "--config=configs/vivid.py", f"--workdir={tmp_path}",
          "--config.loss.kind=regression", "--config.data.domains=('toon',)"]
  proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120,
                        env={**os.environ, "JAX_PLATFORMS": "cpu"})
  assert proc.returncode == 2
  lines = [l for l in proc.stderr.splitlines() if l.strip()]
  assert lines == ["error: config.loss.kind='regression': expected one of l1, classification"], lines


def test_vivid_config_is_an_automatic_classification_model_at_the_measured_temperature():
  """configs/vivid.py is what benchmarks/vivid.py measured best (README): the classification
  head decoded at T = 0.6, no L1, automatic (no hint inputs); --config.loss.* still override."""
  from configs import vivid
  config = vivid.get_config()
  config.data.domains = ("toon",)         # the built-in images: no folders to name here
  config = config_lib.finalize(config)
  config_lib.validate(config)
  assert (config.loss.kind, config.loss.temperature, config.loss.l1_weight) == \
      ("classification", 0.6, 0.0)
  assert not config.model.hints and models.generator_head(config) != "ab"


def test_vivid_benchmark_compares_automatic_models(monkeypatch):
  """benchmarks/vivid.py starts from configs/demo.py (a hint model): every variant it trains
  is automatic; `NAME:λ_M` adds the colourfulness-gap term; `vivid_nr` turns rebalancing off;
  bad variants are refused."""
  monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))   # the import appends to it
  monkeypatch.syspath_prepend(ROOT)
  from benchmarks import vivid as bench
  configs = {s: bench.variant_config(s, 32, 0.5)
             for s in ("recipe", "colorful", "colorful:0.1", "vivid", "vivid_l1:0.3", "vivid_nr")}
  assert all(not c.model.hints for c in configs.values())
  got = {s: (c.loss.kind, c.loss.l1_weight, c.loss.colorfulness_weight) for s, c in configs.items()}
  assert got == {"recipe": ("l1", 100.0, 0.0), "colorful": ("l1", 100.0, 0.5),
                 "colorful:0.1": ("l1", 100.0, 0.1), "vivid": ("classification", 0.0, 0.0),
                 "vivid_l1:0.3": ("classification", 10.0, 0.3),
                 "vivid_nr": ("classification", 0.0, 0.0)}
  assert {s: c.loss.rebalance_lambda for s, c in configs.items()
          if c.loss.kind == "classification"} == {"vivid": 0.5, "vivid_l1:0.3": 0.5, "vivid_nr": 1.0}
  for bad in ("sepia", "colorful:lots"):
    with pytest.raises(SystemExit, match="--variants"):
      bench.variant_config(bad, 32, 0.5)


def test_vivid_benchmark_folds_test_every_image_once_and_never_train_on_it(tmp_path, monkeypatch):
  """`--folds K --fold k`: over the K folds every image is held out exactly once, whole groups
  at a time (a shot's frames never split between training and test); the default split does
  not depend on the validation share."""
  monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
  monkeypatch.syspath_prepend(ROOT)
  from benchmarks import vivid as bench
  lines = ["folder,file,group"]
  lines += [f"animation,shot{g}_{i}.png,shot{g}" for g in range(7) for i in range(2 + g % 3)]
  lines += [f"photos,kodim{i:02d}.png,kodak" for i in range(1, 11)]
  (tmp_path / "manifest.csv").write_text("\n".join(lines) + "\n")
  tested = {"animation": [], "photos": []}
  for k in range(3):
    split = bench.split_by_group(str(tmp_path), 0.25, 0, 0.1, folds=3, fold=k)
    for folder, s in split.items():
      tested[folder] += s["test"]
      assert not set(s["test"]) & set(s["train"] + s["val"])
      shots = {os.path.basename(r[1]).split("_")[0] for r in s["test"]}
      assert shots.isdisjoint(os.path.basename(r[1]).split("_")[0] for r in s["train"])
    assert len(split["photos"]["test"]) in (3, 4)
  assert sorted(tested["photos"]) == sorted(
      ("file", str(tmp_path / "photos" / f"kodim{i:02d}.png")) for i in range(1, 11))
  assert len(tested["animation"]) == len(set(tested["animation"])) == 7 * 2 + 6
  plain = [bench.split_by_group(str(tmp_path), 0.25, 0, v) for v in (0.0, 0.2)]
  assert all(plain[0][f]["test"] == plain[1][f]["test"] for f in plain[0])


def test_vivid_benchmark_pools_folds_into_one_table(tmp_path, monkeypatch, capsys):
  """`--pool`: the folds' per-image results make one table over all their test images; runs
  that tested the same image (two seeds, not folds) are refused."""
  monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
  monkeypatch.syspath_prepend(ROOT)
  from benchmarks import vivid as bench
  from colorjax import report
  dirs = []
  for k in range(2):
    rows = [{"model": m, "domain": d, "image": f"{d}/{k}_{i}.png", "delta_e": 10.0 + k,
             "ssim": 0.9, "psnr": 25.0, "colorfulness_pred": c, "colorfulness_true": 40.0}
            for m, c in (("recipe", 20.0), ("vivid", 36.0), ("gray", 0.0))
            for d in bench.DOMAINS for i in range(3)]
    dirs.append(str(tmp_path / f"f{k}"))
    os.makedirs(dirs[-1])
    report.write_csv(os.path.join(dirs[-1], "per_image.csv"), rows, report.ROW_FIELDS)
    with open(os.path.join(dirs[-1], "summary.json"), "w") as f:
      json.dump({"args": {"seed": 0, "split_seed": 0, "folds": 2},
                 "runs": {m: {"best_step": 600, "steps": 600, "wall_s": 1.0}
                          for m in ("recipe", "vivid")}}, f)
  bench.pool(dirs, str(tmp_path / "pooled"))
  summary = json.load(open(tmp_path / "pooled" / "summary.json"))["summary"]
  vivid = report.lookup(summary, "vivid", "photos")
  assert vivid["n"] == 6 and vivid["delta_e_mean"] == pytest.approx(10.5)
  assert "vivid on photos: colourfulness 90% of truth (met" in capsys.readouterr().out
  assert (tmp_path / "pooled" / "frontier.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  with pytest.raises(SystemExit, match="tested by two runs"):
    bench.pool([dirs[0], dirs[0]], str(tmp_path / "twice"))


def test_vivid_benchmark_redecodes_saved_models_with_a_logit_adjustment(tmp_path, monkeypatch):
  """`--redecode`: a model saved by `--save-params` decoded at α = 0 gives what the model
  itself gives; α > 0 (undoing the rebalancing towards rare colours) gives less colour; a run
  without saved models is a one-line error naming the file."""
  monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
  monkeypatch.syspath_prepend(ROOT)
  import flax.serialization
  from PIL import Image
  from benchmarks import vivid as bench
  from colorjax import evaluate, report
  rng = np.random.default_rng(5)
  lines = ["folder,file,group"]
  for folder in bench.DOMAINS:
    os.makedirs(tmp_path / folder)
    for i in range(2):
      Image.fromarray(rng.integers(0, 255, (40, 40, 3), np.uint8)).save(
          tmp_path / folder / f"{i}.png")
      lines.append(f"{folder},{i}.png,g{i}")
  (tmp_path / "manifest.csv").write_text("\n".join(lines) + "\n")
  args = {"data": str(tmp_path), "test_fraction": 0.5, "split_seed": 0, "folds": 0, "fold": 0,
          "size": 32, "seed": 0, "colorfulness_weight": 0.0, "crop_scale": 1.0}
  split = bench.split_by_group(str(tmp_path), 0.5, 0)
  test = {f: split[f]["test"] for f in bench.DOMAINS}
  config = bench.variant_config("vivid", 32, 0.0)
  g, _ = models.build_models(config)
  variables = jax.jit(g.init)(jax.random.key(1), jnp.zeros((1, 32, 32, 1)))
  # A head that prefers some bins, so that decoding choices matter.
  params = jax.tree_util.tree_map_with_path(
      lambda p, x: x + 3.0 * jnp.asarray(rng.normal(size=x.shape), x.dtype)
      if "head" in jax.tree_util.keystr(p) else x, variables["params"])
  variables = {"params": params, "batch_stats": variables["batch_stats"]}
  prior = np.exp(-(ab_bins.centers() ** 2).sum(1) / (2 * 15.0 ** 2))   # mostly greyish, as images
  run = tmp_path / "run"
  os.makedirs(run)
  (run / "vivid.msgpack").write_bytes(
      flax.serialization.to_bytes({**jax.device_get(variables), "ab_prior": prior / prior.sum()}))
  rows = [{"model": m, **r} for m, c in (("recipe", 0.1), ("gray", 0.0))
          for r in evaluate.evaluate_domains(
              bench.study.constant_predictor(np.array([c, c])), test, 32, 16)]
  report.write_csv(str(run / "per_image.csv"), rows, report.ROW_FIELDS)
  info = {"best_step": 2, "steps": 2, "wall_s": 1.0}
  (run / "summary.json").write_text(json.dumps({"args": args, "runs": {"recipe": info,
                                                                        "vivid": info}}))
  bench.redecode([str(run)], str(tmp_path / "out"), [0.0, 1.0], [0.6])
  got = report.summarize(report.read_per_image(str(tmp_path / "out" / "per_image.csv")))
  own = report.summarize([{"model": "vivid", **r} for r in evaluate.evaluate_domains(
      evaluate.generator_predictor(config, variables), test, 32, 16)])
  for domain in bench.DOMAINS:
    a0 = report.lookup(got, "vivid@α=0,T=0.6", domain)
    assert a0["delta_e_mean"] == pytest.approx(report.lookup(own, "vivid", domain)["delta_e_mean"],
                                               rel=1e-5)
    a1 = report.lookup(got, "vivid@α=1,T=0.6", domain)
    assert a1["colorfulness_pred_mean"] < a0["colorfulness_pred_mean"]
  assert "vivid@α=1,T=0.6 | photos" in (tmp_path / "out" / "table.md").read_text()
  (run / "vivid.msgpack").unlink()
  with pytest.raises(SystemExit, match="vivid.msgpack: not found"):
    bench.redecode([str(run)], str(tmp_path / "out2"), [0.0], [0.6])


# ---- comparing two studies --------------------------------------------------------------------

def _fake_study(path, shift_de, shift_col):
  from colorjax import report
  rows = []
  for model in ("cartoon", "movie", "mixed", "gray", "mean_ab"):
    for domain in ("toon", "photo"):
      for i in range(12):
        base = 10 + i % 5
        rows.append({"model": model, "domain": domain, "image": f"{domain}/{i}.png",
                     "delta_e": base + (shift_de if model not in ("gray", "mean_ab") else 0)
                     + 0.01 * (i % 2),
                     "ssim": 0.8 + 0.01 * (i % 5), "psnr": 25.0, "colorfulness_true": 40.0,
                     "colorfulness_pred": 15.0 + (shift_col if model not in ("gray", "mean_ab") else 0)})
  os.makedirs(os.path.join(path, "report"))
  report.write_csv(os.path.join(path, "report", "per_image.csv"), rows, report.ROW_FIELDS)
  return rows


def test_compare_puts_two_studies_side_by_side_with_paired_differences(tmp_path, capsys):
  from colorjax import compare
  _fake_study(str(tmp_path / "a"), 0.0, 0.0)
  _fake_study(str(tmp_path / "b"), 1.0, 20.0)
  out = str(tmp_path / "cmp")
  assert compare.main([str(tmp_path / "a"), str(tmp_path / "b"), f"--out={out}"]) == 0
  text = open(os.path.join(out, "compare.md")).read()
  for model in ("recipe/mixed", "vivid/mixed", "recipe/cartoon", "vivid/movie", "gray"):
    assert f"| {model} | toon |" in text
  assert text.count("| gray | toon |") == 1
  # vivid: +20 M on 40 (88% vs 38% of the truth), ΔE00 +1 on every image: clearly worse
  assert "vivid reaches 88% of the truth's colourfulness (recipe: 38%)" in text
  assert "paired difference +1.00 [+1.00, +1.00] over 12 images: worse" in text
  assert "more colourful than recipe in 6 (mean +20.0 M), its ΔE00 is higher in 6" in text
  for f in ("delta_e.png", "ssim.png", "colorfulness.png", "summary.csv"):
    assert os.path.getsize(os.path.join(out, f)) > 0
  assert compare.main([str(tmp_path / "a"), str(tmp_path / "nope")]) == 2
  assert "nope: no report/per_image.csv" in capsys.readouterr().err
  (tmp_path / "afile").write_text("")
  assert compare.main([str(tmp_path / "a"), str(tmp_path / "b"), f"--out={tmp_path / 'afile'}"]) == 2
  assert capsys.readouterr().err == f"error: --out={tmp_path / 'afile'}: exists and is not a directory\n"
