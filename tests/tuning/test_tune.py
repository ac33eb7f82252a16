"""jaxflow tune: the GP against hand-checkable cases, EI/UCB against closed forms, search spaces, grid and
quasi-random coverage, BO against random on Branin, the study loop (early stopping, resume, failures,
grouping) on a fake trainer, and real end-to-end studies on the digits MLP."""

from __future__ import annotations

import ast
import itertools
import json
import math
import os
import re

import numpy as np
import pytest
from scipy import stats as scipy_stats

import jaxflow
from jaxflow import cli
from jaxflow.config import ConfigError, config_hash
from jaxflow.run import train as loop
from jaxflow.tuning import acquisition, gp, pruning, space_file, suggest, trials
from jaxflow.tuning import space as S
from jaxflow.tuning.best_config import literal
from jaxflow.workdir import prepare_workdir
from tests.conftest import config_path, latest_params, max_param_diff, merge_overrides
from tests.hparams_readback import read_hparams

MLP = config_path("digits_mlp.py")
SPACE = os.path.join(os.path.dirname(MLP), "spaces", "digits_mlp.py")
TINY = ["model.widths=(32,)", "train.epochs=2", "train.histogram_every=1000", "train.class_report_every=1000"]
PNG = b"\x89PNG\r\n\x1a\n"


def tiny(*overrides):
  return jaxflow.load_config(MLP, merge_overrides(*TINY, *overrides))


def branin(p):
  x1, x2 = p["x1"], p["x2"]
  b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
  return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


BRANIN = S.Space(S.uniform("x1", -5.0, 10.0), S.uniform("x2", 0.0, 15.0))
BRANIN_MIN = 0.397887


# -- the GP -------------------------------------------------------------------------------------------


def test_matern52_closed_form():
  x = np.array([[0.0, 0.0]])
  y = np.array([[0.3, 0.4]])  # r = 0.5 / 0.5 = 1 with lengthscale 0.5
  import jax

  with jax.enable_x64(True):
    k = float(gp.matern52(x, y, np.array([0.5, 0.5]), 2.0)[0, 0])
    k0 = float(gp.matern52(x, x, np.array([0.5, 0.5]), 2.0)[0, 0])
  r = 1.0
  assert k == pytest.approx(2.0 * (1 + math.sqrt(5) * r + 5 / 3 * r**2) * math.exp(-math.sqrt(5) * r), rel=1e-12)
  assert k0 == pytest.approx(2.0)


def test_gp_fits_a_1d_function_and_interpolates_its_data():
  x = np.linspace(0.02, 0.98, 10)[:, None]
  y = np.sin(6 * x[:, 0])
  model = gp.fit(x, y, seed=0)
  grid = np.linspace(0, 1, 101)[:, None]
  mean, std = model.predict(grid)
  assert np.abs(mean - np.sin(6 * grid[:, 0])).max() < 0.05
  mean_at, std_at = model.predict(x)
  assert np.abs(mean_at - y).max() < 1e-3 and std_at.max() < 1e-2  # ~0 variance at the data
  assert std.max() > std_at.max()  # more between the data than at it
  far = model.predict(np.array([[3.0]]))[1][0]  # far from the data: back to the prior's std
  assert far == pytest.approx(math.sqrt(model.params["amplitude"]) * model.y_std, rel=0.05)
  # Fitting improved the marginal likelihood over where it started, and over a default guess.
  assert model.nll < model.nll_start
  default = {"lengthscales": np.array([0.5]), "amplitude": np.array(1.0), "noise": np.array(1e-3)}
  assert model.nll < model.neg_log_likelihood(default) - 1.0
  assert model.neg_log_likelihood() == pytest.approx(model.nll, abs=1e-6)


def test_closed_form_gradient_equals_autodiff_through_the_cholesky():
  import jax
  import jax.numpy as jnp

  rng = np.random.default_rng(2)
  x, y = np.zeros((16, 8)), np.zeros(16)
  x[:11, :3], y[:11] = rng.random((11, 3)), rng.normal(size=11)  # 11 real rows and 3 real columns, padded
  mask, dims = (np.arange(16) < 11).astype(float), (np.arange(8) < 3).astype(float)
  with jax.enable_x64(True):
    raw = {"lengthscales": jnp.asarray(rng.normal(size=8)), "amplitude": jnp.asarray(0.3), "noise": jnp.asarray(-1.0)}
    for prior in (None, gp.LENGTHSCALE_PRIOR):

      def loss(r, prior=prior):
        p = gp.constrain(r)
        return gp.neg_log_marginal_likelihood(p, x, y, mask) + (
          0.0 if prior is None else gp.log_prior_penalty(p, dims, prior)
        )

      value, grads, nll = jax.jit(gp.loss_and_grad, static_argnames="prior")(raw, x, y, mask, dims, prior)
      # Jitted: op by op, the autodiff reference dispatched (and compiled) hundreds of tiny programs.
      auto_value, auto = jax.jit(jax.value_and_grad(loss))(raw)
      assert float(value) == pytest.approx(float(auto_value), rel=1e-12)
      assert float(nll) == pytest.approx(
        float(jax.jit(lambda r: gp.neg_log_marginal_likelihood(gp.constrain(r), x, y, mask))(raw)), rel=1e-12
      )
      for k in raw:
        np.testing.assert_allclose(np.asarray(grads[k]), np.asarray(auto[k]), rtol=1e-8, atol=1e-10)


def test_ard_gives_an_irrelevant_dimension_a_longer_lengthscale():
  x = np.random.default_rng(0).random((16, 2))
  model = gp.fit(x, np.sin(5 * x[:, 0]), seed=0)
  ls = model.params["lengthscales"]
  assert ls[1] > 5 * ls[0]
  share = model.importance()
  assert share.sum() == pytest.approx(1.0) and share[0] > 0.8


def test_padding_leaves_the_posterior_unchanged():
  rng = np.random.default_rng(1)
  x, y = rng.random((5, 2)), rng.random(5)
  model = gp.fit(x, y, seed=0)
  xs = rng.random((7, 2))
  mean, std = model.predict(xs)
  # The same points given as extra (fantasy) rows, i.e. at another padded size, give the same posterior.
  half = gp.GP(params=model.params, x=x[:3], y=y[:3], y_mean=model.y_mean, y_std=model.y_std, nll=0.0, nll_start=0.0)
  mean2, std2 = half.predict(xs, extra_x=x[3:], extra_y=y[3:])
  np.testing.assert_allclose(mean, mean2, atol=1e-9)
  np.testing.assert_allclose(std, std2, atol=1e-9)


def test_expected_improvement_and_ucb_closed_forms():
  mean, std, best = np.array([0.0, 1.0, -0.5]), np.array([1.0, 0.5, 0.2]), 0.2
  ei = acquisition.score("ei", mean, std, best=best, xi=0.0)
  z = (best - mean) / std
  expected = (best - mean) * scipy_stats.norm.cdf(z) + std * scipy_stats.norm.pdf(z)
  np.testing.assert_allclose(ei, expected, rtol=1e-10)
  assert acquisition.score("ei", np.array([0.0]), np.array([1.0]), best=0.0, xi=0.0)[0] == pytest.approx(
    1 / math.sqrt(2 * math.pi)
  )
  np.testing.assert_allclose(acquisition.score("ucb", mean, std, best=best, beta=2.0), -(mean - 2 * std))


def test_a_batch_of_proposals_is_distinct_kriging_believer():
  rng = np.random.default_rng(0)
  observed = BRANIN.assignments(rng.random((8, 2)))
  values = np.array([branin(p) for p in observed])
  model = gp.fit(BRANIN.features_of(observed), values)
  batch = acquisition.propose(model, BRANIN, count=4, observed=observed, seed=0)
  units = np.array([BRANIN.to_unit(p) for p in batch])
  gaps = [np.linalg.norm(units[i] - units[j]) for i in range(4) for j in range(i)]
  assert len(batch) == 4 and min(gaps) > 1e-3
  assert all(-5 <= p["x1"] <= 10 and 0 <= p["x2"] <= 15 for p in batch)


# -- search spaces ------------------------------------------------------------------------------------


def test_space_sampling_ranges_scales_integers_categoricals_conditionals():
  sp = S.Space(
    S.log_uniform("lr", 1e-4, 1e-1),
    S.uniform("drop", 0.0, 0.5),
    S.integer("bs", 32, 256, log=True),
    S.integer("layers", 1, 3),
    S.categorical("opt", ["adam", "momentum", "sgd"]),
    S.uniform("mom", 0.5, 0.99, when={"opt": "momentum"}),
  )
  points = sp.assignments(sp.sample_unit("random", 0, 3000, seed=0))
  lr = np.array([p["lr"] for p in points])
  assert lr.min() >= 1e-4 and lr.max() <= 1e-1
  assert np.median(np.log10(lr)) == pytest.approx(-2.5, abs=0.1)  # log-uniform: the median is the geometric mean
  assert all(0 <= p["drop"] <= 0.5 for p in points)
  bs = [p["bs"] for p in points]
  assert all(isinstance(b, int) and 32 <= b <= 256 for b in bs) and np.median(bs) == pytest.approx(
    math.sqrt(32 * 256), rel=0.1
  )
  counts = np.bincount([p["layers"] for p in points])[1:]
  assert set(p["layers"] for p in points) == {1, 2, 3} and counts.min() > 0.28 * len(
    points
  )  # each integer equally likely
  opts = {o: sum(p["opt"] == o for p in points) for o in ("adam", "momentum", "sgd")}
  assert min(opts.values()) > 0.28 * len(points)
  assert all(("mom" in p) == (p["opt"] == "momentum") for p in points)  # momentum only for its optimizer
  assert all(0.5 <= p["mom"] <= 0.99 for p in points if "mom" in p)
  # GP features: one-hot categoricals, the inactive conditional at its fixed value, all in [0, 1].
  f = sp.features_of(points[:50])
  assert f.shape == (50, 5 + 3) and f.min() >= 0 and f.max() <= 1
  cols = sp.feature_slices()
  np.testing.assert_array_equal(f[:, cols["opt"]].sum(axis=1), 1.0)
  inactive = [i for i, p in enumerate(points[:50]) if "mom" not in p]
  assert np.all(f[inactive, cols["mom"]] == S.INACTIVE)


def test_grid_sobol_halton_cover_the_space():
  sp = S.Space(S.uniform("a", 0.0, 1.0), S.log_uniform("b", 1e-3, 1e-1), S.categorical("c", ["x", "y"]))
  grid, levels = sp.grid(50)
  assert levels == 5 and len(grid) == 50  # 5 x 5 x 2
  assert {p["a"] for p in grid} == {0.0, 0.25, 0.5, 0.75, 1.0}
  assert sorted({p["b"] for p in grid}) == pytest.approx([1e-3, 10**-2.5, 1e-2, 10**-1.5, 1e-1], rel=1e-9)
  for method in ("sobol", "halton"):
    u = sp.sample_unit(method, 0, 64, seed=3)
    cells = {(int(a * 8), int(b * 8)) for a, b in u[:, :2]}
    assert len(cells) >= 0.6 * 64, method  # low discrepancy: far more 8x8 cells hit than random's ~63%
    np.testing.assert_array_equal(
      sp.sample_unit(method, 10, 5, seed=3), u[10:15]
    )  # index-stable: resumes draw the same
  conditional = S.Space(S.categorical("o", ["adam", "momentum"]), S.uniform("m", 0.5, 0.9, when={"o": "momentum"}))
  points, _ = conditional.grid(10)
  assert {"o": "adam"} in points and sum(p["o"] == "adam" for p in points) == 1  # inactive values collapse


@pytest.mark.parametrize(
  "build, says",
  [
    (lambda: S.log_uniform("optim.lr", 0.0, 1.0), "'optim.lr': a log scale needs low > 0"),
    (lambda: S.uniform("x", 2.0, 1.0), "'x': low=2.0 must be below high=1.0"),
    (lambda: S.integer("n", 1.5, 4), "'n': low=1.5 must be a finite integer"),
    (lambda: S.categorical("c", []), "'c': values must be a non-empty list"),
    (
      lambda: S.Space(S.uniform("m", 0.1, 0.9, when={"o": "sgd"})),
      "'m': its condition names 'o', which is not a parameter defined before it",
    ),
    (
      lambda: S.Space(S.categorical("o", ["adam"]), S.uniform("m", 0.1, 0.9, when={"o": "sgd"})),
      "condition o='sgd' is not one of ['adam']",
    ),
  ],
)
def test_space_errors_name_the_parameter(build, says):
  with pytest.raises(ConfigError) as e:
    build()
  assert says in str(e.value) and "\n" not in str(e.value)


def test_space_check_against_the_config():
  config = tiny()
  with pytest.raises(ConfigError, match="'optim.lrr' is not a config field"):
    S.Space(S.log_uniform("optim.lrr", 1e-4, 1e-1)).check(config)
  with pytest.raises(ConfigError, match=r"config.train.batch_size=.* does not fit the field \(int\)"):
    S.Space(S.uniform("train.batch_size", 32.0, 64.0)).check(config)
  with pytest.raises(ConfigError, match="'model.widthz' .*from derive"):
    S.Space(S.integer("w", 8, 16), derive=lambda p: {"model.widthz": (p["w"],)}).check(config)
  full = space_file.load_space(SPACE)
  full.check(config)
  p = {
    "optim.lr": 0.01,
    "optim.name": "momentum",
    "optim.momentum": 0.9,
    "model.dropout_rate": 0.1,
    "train.batch_size": 64,
    "train.epochs": 5,
    "layers": 2,
    "width": 64,
  }
  trial = trials.trial_config(config, full, p)
  assert trial.model.widths == (64, 64) and trial.optim.name == "momentum" and trial.train.batch_size == 64
  assert config.model.widths == (32,)  # the base is untouched


OUT_OF_RANGE = [
  (
    S.Space(S.uniform("model.dropout_rate", 0.0, 1.5)),
    "space parameter 'model.dropout_rate': high=1.5 is refused by the config: "
    "config.model.dropout_rate=1.5 must be in [0, 1)",
  ),
  (
    S.Space(S.integer("train.batch_size", 0, 64)),
    "space parameter 'train.batch_size': low=0 is refused by the config: config.train.batch_size=0 must be > 0",
  ),
  (
    S.Space(S.uniform("optim.lr", -1.0, 0.1)),
    "space parameter 'optim.lr': low=-1.0 is refused by the config: config.optim.lr=-1.0 must be > 0",
  ),
  (
    S.Space(S.uniform("data.label_noise.rate", 0.0, 2.0)),
    "space parameter 'data.label_noise.rate': high=2.0 is refused by the config: "
    "config.data.label_noise.rate=2.0 must be in [0, 1]",
  ),
  (  # a conditional parameter is checked too
    S.Space(
      S.categorical("optim.name", ["adam", "momentum"]),
      S.uniform("optim.momentum", -0.5, 0.9, when={"optim.name": "momentum"}),
    ),
    "space parameter 'optim.momentum': low=-0.5 is refused by the config: config.optim.momentum=-0.5 must be >= 0",
  ),
  (  # a parameter derive() consumes is checked through what derive() makes of it
    S.Space(
      S.integer("layers", 1, 3),
      S.categorical("width", [0, 64]),
      derive=lambda p: {"model.widths": (p["width"],) * p["layers"]},
    ),
    "space parameter 'width': value 0 is refused by the config: config.model.widths=(0, 0) must be a tuple of "
    "positive ints",
  ),
  (
    S.Space(S.categorical("model.widths", [(32,), (64, -1)])),
    "space parameter 'model.widths': value (64, -1) is refused by the config: config.model.widths=(64, -1) must",
  ),
]


@pytest.mark.parametrize("space, says", OUT_OF_RANGE, ids=[s.names[-1] for s, _ in OUT_OF_RANGE])
def test_a_range_end_the_field_refuses_is_refused_up_front(tmp_path, fake, space, says):
  with pytest.raises(ConfigError) as e:
    space.check(tiny())
  assert str(e.value).startswith(says) and "\n" not in str(e.value), str(e.value)
  with pytest.raises(ConfigError, match=re.escape(says)):  # a study refuses it before any trial runs
    jaxflow.tune(tiny(), str(tmp_path / "study"), space=space, method="random", trials=2)
  assert fake.runs == [] and not (tmp_path / "study").exists()


def test_ranges_inside_the_fields_rules_pass():
  S.Space(
    S.uniform("model.dropout_rate", 0.0, 0.99),
    S.integer("train.batch_size", 1, 256, log=True),
    S.log_uniform("optim.lr", 1e-6, 10.0),
    S.uniform("optim.momentum", 0.0, 1.0),  # the field's own rule is >= 0: 1.0 is allowed
  ).check(tiny())


# -- search methods on known functions ----------------------------------------------------------------


def _regret(method: str, seed: int, budget: int) -> float:
  sg = suggest.Suggester(BRANIN, method=method, seed=seed)
  observed, values = [], []
  for i in range(budget):
    p = sg.suggest(i, 1, observed, values)[0]
    observed.append(p)
    values.append(branin(p))
  return min(values) - BRANIN_MIN


@pytest.mark.slow
def test_bo_beats_random_on_branin_at_a_small_budget():
  bo = [_regret("bo", s, 16) for s in range(5)]
  rand = [_regret("random", s, 16) for s in range(5)]
  assert np.median(bo) < np.median(rand), (bo, rand)
  assert np.median(bo) < 1.0


def test_grid_and_quasi_random_suggesters_are_index_stable():
  for method in ("grid", "random", "sobol", "halton"):
    sg = suggest.Suggester(BRANIN, method=method, seed=1, budget=9)
    whole = sg.suggest(0, 9)
    assert [p for i in range(9) for p in sg.suggest(i, 1)] == whole, method
  assert len(suggest.Suggester(BRANIN, method="grid", budget=9).suggest(0, 20)) == 9  # a 3 x 3 grid, exhausted


# -- early stopping rules -----------------------------------------------------------------------------


def test_rungs_and_the_rules():
  assert pruning.make_rungs("median", 20).epochs == (5, 20)
  assert pruning.make_rungs("asha", 27).epochs == (3, 9, 27)
  assert pruning.make_rungs("asha", 2).epochs == (1, 2)
  assert pruning.make_rungs("none", 7).epochs == (7,)
  median = pruning.make_rungs("median", 20)
  assert pruning.keep_going(0.1, [0.9, 0.8], rungs=median, mode="max")  # too few earlier trials to judge
  assert not pruning.keep_going(0.75, [0.9, 0.8, 0.7], rungs=median, mode="max")  # below the median
  assert pruning.keep_going(0.8, [0.9, 0.8, 0.7], rungs=median, mode="max")  # at the median
  assert pruning.keep_going(0.75, [0.9, 0.8, 0.7], rungs=median, mode="min")
  asha = pruning.make_rungs("asha", 27)
  assert pruning.keep_going(0.85, [0.9, 0.8, 0.7], rungs=asha, mode="max")  # top third of 4
  assert not pruning.keep_going(0.75, [0.9, 0.8, 0.7], rungs=asha, mode="max")
  with pytest.raises(ConfigError, match="--early_stop='sometimes' is not known; allowed: none, median, asha"):
    pruning.make_rungs("sometimes", 5)


# -- the study loop on a fake trainer (fast: no training) ---------------------------------------------


class FakeLoop:
  """Stands in for loop.train_and_evaluate / train_group: writes config.json and a summary whose final
  accuracy is a known function of lr and epochs; `crash_lr` raises like a crashed run would."""

  def __init__(self, crash_above: float = 1.0):
    self.runs, self.groups, self.crash_above = [], [], crash_above

  def value(self, cfg) -> float:
    return 0.99 - 0.1 * abs(math.log10(cfg.optim.lr) + 2.5) - 0.5 / cfg.train.epochs

  def train_and_evaluate(self, cfg, workdir, *, quiet=True, compiled=None):
    if cfg.optim.lr > self.crash_above:
      raise loop.NonFiniteLossError("non-finite training loss nan at step 3 (epoch 1); stopped.")
    prepare_workdir(workdir, cfg)
    self.runs.append((workdir, cfg.train.epochs))
    v = self.value(cfg)
    with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:  # a learning curve ending at v
      for e in range(1, cfg.train.epochs + 1):
        f.write(
          json.dumps(
            {"step": e, "epoch": e, "split": "eval", "accuracy": v - 0.05 * (cfg.train.epochs - e) / cfg.train.epochs}
          )
          + "\n"
        )
    summary = {
      "status": "completed",
      "final": {"eval": {"accuracy": v, "loss": 1 - v}},
      "best": {"value": v, "epoch": cfg.train.epochs},
    }
    with open(os.path.join(workdir, "summary.json"), "w") as f:
      json.dump(summary, f)
    return summary

  def train_group(self, cfgs, workdirs, *, quiet=True, compiled=None):
    self.groups.append(len(cfgs))
    return [self.train_and_evaluate(c, w) for c, w in zip(cfgs, workdirs)]


@pytest.fixture
def fake(monkeypatch):
  f = FakeLoop()
  monkeypatch.setattr(loop, "train_and_evaluate", f.train_and_evaluate)
  monkeypatch.setattr(loop, "train_group", f.train_group)
  return f


LR_SPACE = S.Space(S.log_uniform("optim.lr", 1e-4, 1e-1))


def test_study_resumes_after_finished_trials(tmp_path, fake):
  config = tiny("train.epochs=8")
  report = jaxflow.tune(config, str(tmp_path), space=LR_SPACE, method="sobol", trials=4)
  assert report["counts"]["completed"] == 4 and len(fake.runs) == 4
  again = jaxflow.tune(config, str(tmp_path), space=LR_SPACE, method="sobol", trials=4)
  assert len(fake.runs) == 4 and again["resumed_trials"] == 4  # nothing retrained
  more = jaxflow.tune(
    config, str(tmp_path), space=LR_SPACE, method="bo", trials=6
  )  # continue, even with another method
  assert len(fake.runs) == 6 and more["counts"]["completed"] == 6
  assert [t["params"] for t in more["trials"][:4]] == [t["params"] for t in report["trials"]]
  # An interrupted trial (proposed, never finished) is trained on the rerun with its recorded params.
  record = json.load(open(tmp_path / "trials" / "trial_0005" / "trial.json"))
  record.update(status="pending", value=None, rungs=[])
  json.dump(record, open(tmp_path / "trials" / "trial_0005" / "trial.json", "w"))
  os.remove(tmp_path / "trials" / "trial_0005" / "summary.json")
  jaxflow.tune(config, str(tmp_path), space=LR_SPACE, method="bo", trials=6)
  assert len(fake.runs) == 7 and fake.runs[-1][0].endswith("trial_0005")
  with pytest.raises(ConfigError, match="holds a study with another base config"):
    jaxflow.tune(tiny("train.epochs=9"), str(tmp_path), space=LR_SPACE, method="bo", trials=6)


def test_a_crashed_trial_is_recorded_and_the_study_goes_on(tmp_path, fake):
  fake.crash_above = 0.01
  # 100 training examples are fewer than the batch of 128: a config error of that combination only.
  space = S.Space(S.categorical("optim.lr", [0.003, 0.05, 0.001]), S.categorical("data.train_examples", [None, 100]))
  report = jaxflow.tune(tiny(), str(tmp_path), space=space, method="grid", trials=6)
  by = {(t["params"]["optim.lr"], t["params"]["data.train_examples"]): t for t in report["trials"]}
  assert (
    by[(0.05, None)]["status"] == "failed"
    and "NonFiniteLossError: non-finite training loss" in by[(0.05, None)]["error"]
  )
  assert (
    by[(0.003, 100)]["status"] == "failed"
    and "config.train.batch_size=128 is larger than split" in by[(0.003, 100)]["error"]
  )
  assert by[(0.003, None)]["status"] == by[(0.001, None)]["status"] == "completed"
  assert report["counts"] == {"completed": 2, "failed": 4, "stopped": 0, "pending": 0}
  assert report["best"]["params"] == {"optim.lr": 0.003, "data.train_examples": None}
  record = json.load(
    open(tmp_path / "trials" / "trial_0002" / "trial.json")
  )  # the error is in trial.json, not a summary.json
  assert record["status"] == "failed" and "NonFiniteLossError" in record["error"]
  assert not os.path.exists(tmp_path / "trials" / "trial_0002" / "summary.json")
  # The failures are kept on a rerun (not retried).
  rerun = jaxflow.tune(tiny(), str(tmp_path), space=space, method="grid", trials=6)
  assert rerun["counts"]["failed"] == 4 and len(fake.runs) == 2


def test_a_refused_workdir_keeps_the_other_runs_summary(tmp_path, fake):
  # trial_0000 already holds another run (another config): the loop refuses it, the trial fails, and that
  # run's summary.json is left as it was.
  other = tmp_path / "trials" / "trial_0000"
  prepare_workdir(str(other), tiny("train.epochs=5"))
  (other / "summary.json").write_text(json.dumps({"status": "completed", "mine": True}))
  report = jaxflow.tune(tiny(), str(tmp_path), space=LR_SPACE, method="sobol", trials=1)
  assert report["counts"]["failed"] == 1 and "ConfigError" in report["trials"][0]["error"]
  assert json.load(open(other / "summary.json")) == {"status": "completed", "mine": True}


def test_a_completed_trial_whose_run_is_gone_trains_again(tmp_path, fake):
  config = tiny("train.epochs=8")
  jaxflow.tune(config, str(tmp_path), space=LR_SPACE, method="sobol", trials=2)
  assert len(fake.runs) == 2
  trial = tmp_path / "trials" / "trial_0001"
  record = json.load(open(trial / "trial.json"))
  assert record["status"] == "completed" and len(record["rungs"]) == 1
  record["value"] = record["rungs"][-1]["value"] = 0.123  # a stale value, so a kept rung would show
  json.dump(record, open(trial / "trial.json", "w"))
  os.remove(trial / "summary.json")  # the run is gone, the record is kept
  report = jaxflow.tune(config, str(tmp_path), space=LR_SPACE, method="sobol", trials=2)
  assert len(fake.runs) == 3 and fake.runs[-1][0] == str(trial)  # trained again ...
  assert os.path.exists(trial / "summary.json")
  again = json.load(open(trial / "trial.json"))
  expected = fake.value(trials.trial_config(config, LR_SPACE, again["params"]))
  assert (
    again["status"] == "completed" and again["value"] == expected == report["trials"][1]["value"] != 0.123
  )  # ... and its value recomputed
  assert again["rungs"][-1]["value"] == expected and len(again["rungs"]) == 1


def test_early_stopped_rungs_of_a_trial_whose_final_run_is_gone_are_kept(tmp_path, fake):
  config = tiny("train.epochs=8")
  report = jaxflow.tune(config, str(tmp_path), space=LR_SPACE, method="sobol", trials=4, early_stop="median")
  done = next(t for t in report["trials"] if t["status"] == "completed")
  os.remove(tmp_path / done["workdir"] / "summary.json")  # the full run is gone; its probe run is still there
  n = len(fake.runs)
  again = jaxflow.tune(config, str(tmp_path), space=LR_SPACE, method="sobol", trials=4, early_stop="median")
  assert fake.runs[n:] == [(str(tmp_path / done["workdir"]), 8)]  # only the last rung retrained
  assert (
    again["trials"][done["index"]]["value"] == done["value"] and again["trials"][done["index"]]["status"] == "completed"
  )


def test_tuple_categoricals_round_trip_and_resume(tmp_path, fake):
  space = S.Space(
    S.log_uniform("optim.lr", 1e-4, 1e-1),
    S.categorical("model.widths", [(32,), (64,)]),  # equal-length tuples: np.array would make them 2-D
    S.categorical("shape", [(16, 16), (32, 8)]),
    derive=lambda p: {"model.widths": p["model.widths"] + p["shape"]},
  )
  values, _ = space.decode(np.array([[0.1, 0.2, 0.7], [0.9, 0.9, 0.1]]))
  assert values["model.widths"].shape == (2,) and list(values["model.widths"]) == [(32,), (64,)]
  assert list(values["shape"]) == [(32, 8), (16, 16)]
  assert space.features_of([{"optim.lr": 0.01, "model.widths": [64], "shape": [32, 8]}]).shape == (
    1,
    5,
  )  # lists, as JSON gives back
  assert space.to_unit({"optim.lr": 0.01, "model.widths": [64], "shape": (16, 16)})[1:].tolist() == [0.75, 0.25]
  config = tiny("train.epochs=4")
  first = jaxflow.tune(config, str(tmp_path), space=space, method="bo", trials=6, init_trials=3)
  assert first["counts"]["completed"] == 6
  again = jaxflow.tune(
    config, str(tmp_path), space=space, method="bo", trials=8, init_trials=3
  )  # resumes: the study.json check passes
  assert again["resumed_trials"] == 6 and again["counts"]["completed"] == 8 and len(fake.runs) == 8
  assert [t["params"] for t in again["trials"][:6]] == [t["params"] for t in first["trials"]]
  for t in again["trials"]:
    assert isinstance(t["params"]["model.widths"], tuple) and isinstance(t["params"]["shape"], tuple)
  assert len({space.key(t["params"]) for t in again["trials"]}) == 8
  grid = jaxflow.tune(config, str(tmp_path / "grid"), space=space, method="grid", trials=8)
  assert grid["counts"]["completed"] == 8 and len({space.key(t["params"]) for t in grid["trials"]}) == 8


def test_a_grid_resumed_with_more_trials_keeps_its_points(tmp_path, fake):
  config = tiny("train.epochs=8")
  first = jaxflow.tune(config, str(tmp_path), space=LR_SPACE, method="grid", trials=3)
  assert first["settings"]["grid_levels"] == 3
  lrs = [t["params"]["optim.lr"] for t in first["trials"]]
  more = jaxflow.tune(
    config, str(tmp_path), space=LR_SPACE, method="grid", trials=5
  )  # a 5-level grid would repeat 1e-1
  assert [t["params"]["optim.lr"] for t in more["trials"]] == lrs and len(fake.runs) == 3
  assert more["settings"]["grid_levels"] == 3
  # Two parameters, the smallest grid bigger than the budget: a larger budget continues the same shuffle.
  space = S.Space(
    S.uniform("model.dropout_rate", 0.0, 0.5), S.categorical("optim.lr", [0.001, 0.002, 0.003, 0.004, 0.005])
  )
  a = jaxflow.tune(config, str(tmp_path / "b"), space=space, method="grid", trials=4)
  b = jaxflow.tune(config, str(tmp_path / "b"), space=space, method="grid", trials=10)
  whole = suggest.Suggester(space, method="grid", budget=4).grid_points()
  assert [t["params"] for t in b["trials"]] == whole == [t["params"] for t in a["trials"]] + whole[4:]
  # A grid after other trials skips the points already tried.
  sg = suggest.Suggester(LR_SPACE, method="grid", budget=3)
  assert sg.suggest(0, 3, [sg.grid_points()[1]]) == [sg.grid_points()[0], sg.grid_points()[2]]


def test_grid_sizes_are_counted_lazily():
  # 40 binary categoricals: 2^40 points; the grid is refused (not enumerated), and check()'s sample is lazy.
  big = S.Space(*[S.categorical(f"c{i}", [0, 1]) for i in range(40)])
  assert big.grid_size(2, cap=101) == 101
  with pytest.raises(ConfigError, match="grid at 2 levels per numeric parameter has more than 100,000 points"):
    big.grid(50)
  assert len(list(itertools.islice(big.iter_grid(2), 16))) == 16
  # A numeric parameter next to them: the level search stops at the budget, O(budget) work per level.
  mixed = S.Space(S.uniform("x", 0.0, 1.0), *[S.categorical(f"c{i}", [0, 1]) for i in range(3)])
  points, levels = mixed.grid(40)
  assert levels == 5 and len(points) == 40
  # Conditionals: inactive parameters are not branched on, and the order is that of itertools.product.
  cond = S.Space(S.categorical("a", ["x", "y"]), S.uniform("b", 0.0, 1.0, when={"a": "y"}), S.integer("c", 1, 3))
  assert list(cond.iter_grid(2)) == [
    {"a": "x", "c": 1},
    {"a": "x", "c": 3},
    {"a": "y", "b": 0.0, "c": 1},
    {"a": "y", "b": 0.0, "c": 3},
    {"a": "y", "b": 1.0, "c": 1},
    {"a": "y", "b": 1.0, "c": 3},
  ]


def test_early_stopping_refuses_epochs_from_derive(tmp_path):
  # train.epochs only for one category, not the one at the centre of the cube
  space = S.Space(
    S.categorical("length", ["short", "medium", "long"]),
    derive=lambda p: {"train.epochs": 9} if p["length"] == "long" else {},
  )
  with pytest.raises(ConfigError, match="may not tune train.epochs"):
    jaxflow.tune(tiny("train.epochs=8"), str(tmp_path), space=space, early_stop="median")
  assert not os.path.exists(tmp_path / "study.json")


@pytest.mark.parametrize("rule, epochs", [("median", (2, 8)), ("asha", (1, 3, 8))])
def test_early_stopping_stops_poor_trials_on_separate_short_runs(tmp_path, fake, rule, epochs):
  config = tiny("train.epochs=8")
  report = jaxflow.tune(config, str(tmp_path), space=LR_SPACE, method="random", trials=12, early_stop=rule)
  assert report["settings"]["rungs"] == list(epochs)
  stopped = [t for t in report["trials"] if t["status"] == "stopped"]
  completed = [t for t in report["trials"] if t["status"] == "completed"]
  assert stopped and completed and len(stopped) + len(completed) == 12
  for t in completed:  # the full run in the trial's own workdir, the probes below it
    assert [r["epochs"] for r in t["rungs"]] == list(epochs)
    assert t["rungs"][-1]["workdir"] == t["workdir"]
    assert os.path.exists(tmp_path / t["rungs"][0]["workdir"] / "summary.json")
  for t in report["trials"]:  # a probe's value is its run's last eval record in metrics.jsonl
    for r in t["rungs"][:-1] if t["status"] == "completed" else t["rungs"]:
      records = [json.loads(line) for line in open(tmp_path / r["workdir"] / "metrics.jsonl")]
      assert r["value"] == records[-1]["accuracy"] and r["curve"] == [x["accuracy"] for x in records]
  # A stopped trial ranked poorly at its last rung against the earlier trials there, and trained no more.
  rungs = pruning.make_rungs(rule, 8)
  for t in stopped:
    r = len(t["rungs"]) - 1
    earlier = [u["rungs"][r]["value"] for u in report["trials"] if u["index"] < t["index"] and len(u["rungs"]) > r]
    assert not pruning.keep_going(t["rungs"][r]["value"], earlier, rungs=rungs, mode="max")
    assert r < len(epochs) - 1 and not os.path.exists(tmp_path / t["workdir"] / "summary.json")
  assert (
    report["epochs_trained"]["total"]
    == sum(e for _, e in fake.runs)
    == sum(r["epochs"] for t in report["trials"] for r in t["rungs"])
  )
  with pytest.raises(ConfigError, match="may not tune train.epochs"):
    jaxflow.tune(config, str(tmp_path / "other"), space=S.Space(S.integer("train.epochs", 2, 9)), early_stop=rule)


def test_a_round_trains_its_groupable_trials_as_one_group(tmp_path, fake):
  seeds = S.Space(S.integer("seed", 0, 10**6))  # trials that differ only in their seed always share a group key
  report = jaxflow.tune(tiny(), str(tmp_path), space=seeds, method="random", trials=4, batch=2)
  assert fake.groups == [2, 2] and all(t["group"] == 2 for t in report["trials"])


def test_a_group_error_falls_back_to_one_by_one(tmp_path, fake, monkeypatch):
  def refuse(cfgs, workdirs, **kw):
    raise loop.GroupError("the runs' class weights differ")

  monkeypatch.setattr(loop, "train_group", refuse)
  seeds = S.Space(S.integer("seed", 0, 10**6))
  report = jaxflow.tune(tiny(), str(tmp_path), space=seeds, method="random", trials=2, batch=2)
  assert report["counts"]["completed"] == 2 and len(fake.runs) == 2


def test_bo_study_report_on_the_fake_trainer(tmp_path, fake):
  space = S.Space(
    S.log_uniform("optim.lr", 1e-4, 1e-1),
    S.integer("train.epochs", 2, 20),
    S.uniform("model.dropout_rate", 0.0, 0.5),
    S.integer("train.batch_size", 32, 256),
  )
  report = jaxflow.tune(tiny(), str(tmp_path), space=space, method="bo", trials=10, batch=2)
  assert report["counts"]["completed"] == 10
  assert set(report["importance"]) == {"optim.lr", "train.epochs", "model.dropout_rate", "train.batch_size"}
  assert report["importance"]["optim.lr"] + report["importance"]["train.epochs"] > 0.5  # what the fake depends on
  assert [(s["x"], s["y"]) for s in report["slices"]] == [
    ("optim.lr", "train.epochs"),
    ("model.dropout_rate", "train.batch_size"),
  ]
  so_far = report["convergence"]
  assert all(b >= a for a, b in zip(so_far, so_far[1:]))
  for name in (
    "report.json",
    "report.md",
    "best_config.py",
    "plots/convergence.png",
    "plots/importance.png",
    "plots/slice_optim_lr_train_epochs.png",
  ):
    assert os.path.getsize(tmp_path / name) > 0, name


AWKWARD = 'a\'b\n""" \\N{x} {}'  # quotes, a newline, a docstring's end, a backslash escape, braces


@pytest.mark.parametrize("from_file", [True, False], ids=["from_file", "inline"])
def test_best_config_embeds_any_string_and_loads_back_the_same(tmp_path, fake, from_file):
  """A study whose config holds awkward strings (its data dir, a path to the digits via a symlink of that
  name) in a workdir of such a name writes a best_config.py that loads back with the same values."""
  data_dir = tmp_path / f"data {AWKWARD}"
  os.symlink(os.environ["JAXFLOW_DATA_DIR"], data_dir)
  config = tiny("data.data_dir=placeholder")
  config.data.data_dir = str(data_dir)
  workdir = tmp_path / f"study {AWKWARD}"
  report = jaxflow.tune(
    config, str(workdir), space=LR_SPACE, method="random", trials=2, config_file=MLP if from_file else None
  )
  best = jaxflow.load_config(str(workdir / "best_config.py"))
  assert best.data.data_dir == str(data_dir)
  assert best.optim.lr == report["best"]["params"]["optim.lr"] and best.model.widths == (32,)
  # The docstring names the file by its own path, escaped: it reads back as the path it is.
  doc = ast.get_docstring(ast.parse((workdir / "best_config.py").read_text()))
  assert f"jaxflow train --config={workdir / 'best_config.py'} --workdir=runs/tuned" in doc


@pytest.mark.parametrize(
  "value",
  [AWKWARD, ("a'b", 'c"d', "\\"), (1,), (), float("inf"), -float("inf"), {"k": [1, None, True, 2.5]}, "\x00\r\t"],
)
def test_best_config_literals_round_trip(value):
  assert eval(literal(value), {}) == value  # the literal jaxflow writes, read back as Python would
  nan = eval(literal(float("nan")), {})
  assert math.isnan(nan)


# -- real studies on the digits MLP -------------------------------------------------------------------


def _cli(*args) -> int:
  return cli.main(["jaxflow", "tune", f"--config={MLP}", *[f"--config.{o}" for o in TINY], *args])


@pytest.mark.slow
def test_tune_end_to_end_on_the_digits_mlp(tmp_path, capsys):
  workdir = tmp_path / "tune"
  args = (f"--space={SPACE}:small", "--method=bo", "--trials=4", "--init_trials=2", f"--workdir={workdir}", "--quiet")
  assert _cli(*args) == 0
  out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert out["counts"]["completed"] == 4 and out["metric"] == "eval/accuracy"
  for i in range(4):  # each trial is a normal run workdir
    trial = workdir / "trials" / f"trial_{i:04d}"
    for name in ("config.json", "metrics.jsonl", "summary.json", "checkpoints", "tb", "trial.json"):
      assert (trial / name).exists(), (trial, name)
    summary = json.load(open(trial / "summary.json"))
    record = json.load(open(trial / "trial.json"))
    assert summary["status"] == "completed" and record["value"] == summary["final"]["eval"]["accuracy"]
    assert json.load(open(trial / "config.json"))["hash"] == record["config_hash"]
  report = json.load(open(workdir / "report.json"))
  for name in ("convergence", "importance", "slice_model_dropout_rate_train_batch_size"):
    assert open(workdir / report["plots"][name], "rb").read(8) == PNG
  assert "| trial | status | eval/accuracy |" in open(workdir / "report.md").read()
  # TensorBoard's HPARAMS tab lists every trial with its tuned values and final metrics, beside its scalars.
  experiment, sessions = read_hparams(str(workdir))
  assert {"trial", "model.dropout_rate", "train.batch_size"} <= set(experiment["hparams"])
  assert experiment["metrics"][:2] == ["hparams/objective", "hparams/eval/accuracy"]
  for i in range(4):
    session = sessions[f"trials/trial_{i:04d}/tb"]
    record = json.load(open(workdir / "trials" / f"trial_{i:04d}" / "trial.json"))
    assert session["hparams"]["trial"] == i and session["status"] == 1  # STATUS_SUCCESS
    assert session["hparams"]["model.dropout_rate"] == pytest.approx(record["params"]["model.dropout_rate"])
    assert session["metrics"]["objective"] == pytest.approx(record["value"], abs=1e-7)  # float32 in the event
  # best_config.py is a runnable config: the best trial's config, exactly.
  best = jaxflow.load_config(str(workdir / "best_config.py"))
  best_trial = workdir / "trials" / f"trial_{report['best']['index']:04d}"
  assert config_hash(best) == json.load(open(best_trial / "trial.json"))["config_hash"]
  # ... and `jaxflow train` on it reproduces the trial's parameters bitwise (--batch=1: each trial trained alone).
  assert report["best"]["group"] == 1 and "reproduced bitwise" in open(workdir / "best_config.py").read()
  assert (
    cli.main(
      ["jaxflow", "train", f"--config={workdir / 'best_config.py'}", f"--workdir={tmp_path / 'rerun'}", "--quiet"]
    )
    == 0
  )
  capsys.readouterr()
  rerun = json.load(open(tmp_path / "rerun" / "summary.json"))
  trial_summary = json.load(open(best_trial / "summary.json"))
  assert (
    rerun["params_sha256"] == trial_summary["params_sha256"]
    and rerun["final"]["eval"] == trial_summary["final"]["eval"]
  )
  # A rerun finds every trial finished and trains nothing.
  mtimes = [os.path.getmtime(workdir / "trials" / f"trial_{i:04d}" / "summary.json") for i in range(4)]
  assert _cli(*args) == 0
  assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["best"] == out["best"]
  assert [os.path.getmtime(workdir / "trials" / f"trial_{i:04d}" / "summary.json") for i in range(4)] == mtimes


@pytest.mark.slow
def test_real_failures_are_recorded_and_the_study_goes_on(tmp_path):
  space = S.Space(S.categorical("data.train_examples", [None, 100]))  # 100 < the batch of 128: a config error
  nan = tiny("optim.lr=1e30", "optim.schedule=constant", "optim.warmup_steps=0", "train.epochs=1")  # a forced NaN
  report = jaxflow.tune(nan, str(tmp_path), space=space, method="grid", trials=2)
  errors = {t["params"]["data.train_examples"]: t["error"] for t in report["trials"]}
  assert report["counts"]["failed"] == 2 and report["best"] is None
  assert "config.train.batch_size=128 is larger than split" in errors[100]
  assert "NonFiniteLossError: non-finite" in errors[None]
  assert os.path.exists(tmp_path / "report.md") and not os.path.exists(tmp_path / "best_config.py")


@pytest.mark.parametrize(
  "flag, says",
  [
    ("--method=annealing", "--method='annealing' is not known; allowed: grid, random, sobol, halton, bo"),
    ("--space=configs/spaces/nope.py", "--space='configs/spaces/nope.py': file not found"),
    ("--early_stop=sometimes", "--early_stop='sometimes' is not known"),
    ("--trials=0", "--trials=0 must be a positive integer"),
  ],
)
def test_cli_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, flag, says):
  workdir = tmp_path / "tune"
  args = [f"--space={SPACE}", f"--workdir={workdir}", flag]
  assert _cli(*args) == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and err.startswith("jaxflow tune: error: ") and says in err, err
  assert not workdir.exists()


def test_cli_unknown_space_variant(tmp_path, capsys):
  assert _cli(f"--space={SPACE}:smal", f"--workdir={tmp_path / 'tune'}") == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and f"--space={SPACE!r} has no variant 'smal'; allowed: 'small'" in err, err
  assert not (tmp_path / "tune").exists()


def test_cli_space_with_a_category_the_config_refuses(tmp_path, capsys):
  path = tmp_path / "space.py"
  path.write_text(
    "from jaxflow.tuning import space\n\n"
    "def get_space():\n  return space.Space(space.categorical('optim.name', ['adam', 'lion']))\n"
  )
  assert _cli(f"--space={path}", f"--workdir={tmp_path / 'tune'}") == 2
  err = capsys.readouterr().err
  assert (
    "space parameter 'optim.name': value 'lion' is refused by the config: "
    "config.optim.name='lion' is not known; allowed: " in err
  )
  assert err.count("\n") == 1 and not (tmp_path / "tune").exists()


def test_cli_space_naming_an_unknown_field(tmp_path, capsys):
  path = tmp_path / "space.py"
  path.write_text(
    "from jaxflow.tuning import space\n\n"
    "def get_space():\n  return space.Space(space.log_uniform('optim.lrr', 1e-4, 1e-1))\n"
  )
  assert _cli(f"--space={path}", f"--workdir={tmp_path / 'tune'}") == 2
  err = capsys.readouterr().err
  assert "space parameter 'optim.lrr' is not a config field" in err and err.count("\n") == 1
  assert not (tmp_path / "tune").exists()
  assert cli.main(["jaxflow", "tune", "--help"]) == 0
  assert "--early_stop" in capsys.readouterr().out


@pytest.mark.slow
def test_real_grouped_trials_with_early_stopping_on_the_digits_mlp(tmp_path):
  """Trials that differ in lr and dropout train as one vmapped program, each in a normal workdir, and
  give what the same config trained alone gives; probes' values come from their metrics.jsonl."""
  space = S.Space(S.log_uniform("optim.lr", 1e-3, 3e-2), S.uniform("model.dropout_rate", 0.0, 0.3))
  config = tiny("train.epochs=4")
  report = jaxflow.tune(
    config, str(tmp_path / "tune"), space=space, method="sobol", trials=6, batch=2, early_stop="median"
  )
  assert report["settings"]["rungs"] == [1, 4]
  for pair in (report["trials"][i : i + 2] for i in range(0, 6, 2)):  # each round of two trains as one program ...
    both = len({t["status"] for t in pair}) == 1
    for t in pair:  # ... and its last rung too, unless its partner was stopped at the probe
      assert t["group"] == (2 if both or t["status"] == "stopped" else 1), pair
  assert report["counts"]["completed"] + report["counts"]["stopped"] == 6 and report["counts"]["completed"] >= 3
  for t in report["trials"]:
    probe = tmp_path / "tune" / t["rungs"][0]["workdir"]
    eval_accuracy = [
      json.loads(line)["accuracy"] for line in open(probe / "metrics.jsonl") if json.loads(line)["split"] == "eval"
    ]
    assert len(eval_accuracy) == 1 and t["rungs"][0]["value"] == eval_accuracy[-1]
    assert json.load(open(probe / "config.json"))["config"]["train"]["epochs"] == 1
  # A grouped trial equals its config trained alone.
  t = next(t for t in report["trials"] if t["status"] == "completed")
  alone = loop.train_and_evaluate(trials.trial_config(config, space, t["params"]), str(tmp_path / "alone"), quiet=True)
  grouped = json.load(open(tmp_path / "tune" / t["workdir"] / "summary.json"))
  assert alone["final"]["eval"]["loss"] == pytest.approx(grouped["final"]["eval"]["loss"], rel=1e-4)
  assert alone["final"]["eval"]["accuracy"] == t["value"]
  # Not bitwise (best_config.py and the README say so): the parameters agree to float rounding.
  diff = max_param_diff(latest_params(str(tmp_path / "alone")), latest_params(str(tmp_path / "tune" / t["workdir"])))
  print(f"max |param difference| grouped vs alone: {diff:.3g}")
  assert diff <= 1e-5
