"""jaxflow tune's parts against hand-checkable cases: the GP, EI/UCB against closed forms, search spaces and
their checks against the config, grid and quasi-random coverage, BO against random on Branin, and the early
stopping rules."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from scipy import stats as scipy_stats

import jaxflow
from jaxflow.config import ConfigError
from jaxflow.tuning import acquisition, gp, pruning, space_file, suggest, trials
from jaxflow.tuning import space as S
from tests.tuning.conftest import SPACE, tiny


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
