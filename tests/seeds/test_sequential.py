"""Sequential seeds (`jaxflow seeds compare A B --until-decided`): the stated error rate holds, a clear
difference stops early, and the real thing extends two studies until decided.

The error rates are measured by simulation on normal "finals" (vectorized: thousands of studies in one call
of `decide` per look). With 4,000 simulated studies, a true rate of 5% has a binomial standard error of
0.34%; the sequential design (union bound over looks) should sit well below 5%, so `<= 0.05` fails only for a
design whose real rate is above ~5%.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from scipy import stats

import jaxflow
from jaxflow import cli
from jaxflow.seeds import sequential
from tests.conftest import config_path

STUDIES = 4000


def simulate(effect: float, *, min_effect=None, first=4, round_size=4, max_seeds=64, seed=0):
  """Seeds spent and decisions of STUDIES sequential comparisons of N(effect, 1) against N(0, 1)."""
  rng = np.random.default_rng(seed)
  a = rng.normal(effect, 1.0, (STUDIES, max_seeds))
  b = rng.normal(0.0, 1.0, (STUDIES, max_seeds))
  looks = sequential.plan(first, round_size, max_seeds)
  decision = np.full(STUDIES, "continue", dtype=object)
  spent = np.full(STUDIES, max_seeds)
  for n, level in zip(looks.looks, looks.alphas):
    open_ = decision == "continue"
    now = sequential.decide(a[:, :n], b[:, :n], level, min_effect)
    decision[open_] = now[open_]
    spent[open_ & (now != "continue")] = n
  return decision, spent


def test_plan_spends_exactly_alpha_over_its_looks():
  looks = sequential.plan(4, 4, 64)
  assert looks.looks == tuple(range(4, 65, 4)) and len(looks.alphas) == 16
  assert sum(looks.alphas) == pytest.approx(0.05, abs=1e-12) and all(x > 0 for x in looks.alphas)
  assert sequential.plan(3, 4, 9).looks == (3, 7, 9)  # the maximum is always a look


def test_one_look_is_welchs_test():
  rng = np.random.default_rng(1)
  a, b = rng.normal(0.3, 1, 9), rng.normal(0, 1.5, 7)
  p = stats.ttest_ind(a, b, equal_var=False).pvalue
  assert sequential.decide(a, b, p * 1.001).item() == "a_better"
  assert sequential.decide(a, b, p * 0.999).item() == "continue"
  lo, hi = sequential.interval(a, b, p)  # the interval at the test's own p touches 0
  assert min(abs(lo), abs(hi)) < 1e-9


def test_no_difference_keeps_the_false_positive_rate_below_five_percent():
  decision, _ = simulate(0.0)
  false_positive = np.isin(decision, ["a_better", "b_better"]).mean()
  assert false_positive <= 0.05
  # Testing at 5% at each of the 16 looks instead (no correction) would claim a difference far more often.
  rng = np.random.default_rng(0)
  a, b = rng.normal(0, 1, (STUDIES, 64)), rng.normal(0, 1, (STUDIES, 64))
  naive = np.zeros(STUDIES, bool)
  for n in range(4, 65, 4):
    naive |= sequential.decide(a[:, :n], b[:, :n], 0.05) != "continue"
  assert naive.mean() > 0.15 > 3 * false_positive


def test_equivalence_is_claimed_wrongly_at_most_five_percent_of_the_time():
  """At a true difference equal to the margin, an equivalence claim is an error."""
  decision, _ = simulate(0.5, min_effect=0.5)
  assert (decision == "equivalent").mean() <= 0.05


def test_a_real_difference_stops_early_and_the_right_way():
  decision, spent = simulate(1.5)
  assert (decision == "a_better").mean() >= 0.99
  assert np.median(spent) <= 12  # the fixed design for 1.5 sd needs 8 per arm; 64 were allowed
  decision, _ = simulate(0.0, min_effect=1.0)  # no difference and a wide margin: equivalence is found
  assert (decision == "equivalent").mean() >= 0.9


def test_fixed_design_and_probability_of_superiority():
  assert sequential.fixed_seeds_needed(1.0, 1.0, 1.0) == 17  # the textbook two-sample t-test answer for d = 1
  assert sequential.fixed_seeds_needed(0.0, 1.0, 1.0) is None
  result = sequential.prob_superiority([1, 2, 3], [0, 2])  # pairs won: 1>0, 2>0, 3>0, 3>2 and a tie 2=2
  assert result["p"] == pytest.approx(4.5 / 6) and result["ci95"][0] <= 4.5 / 6 <= result["ci95"][1]


@pytest.mark.parametrize(
  "args, says",
  [
    (["a", "b", "c"], "takes two studies"),
    (["a", "b", "--min_effect=0.01"], "applies only with --until-decided"),
    (["a", "b", "--until-decided", "--max_seeds=x"], "--max_seeds='x' must be a int"),
    (["a", "b", "--until-decided", "--speed=3"], "unknown flag '--speed=3'"),
    (["a.py", "b.py", "--until-decided"], "--workdir=DIR is needed"),
    (["nowhere", "b.py", "--until-decided", "--workdir=w"], "nowhere: neither a config file"),
  ],
)
def test_bad_compare_input_is_one_line(args, says, capsys):
  assert cli.main(["jaxflow", "seeds", "compare", *args]) == 2
  err = capsys.readouterr().err.strip()
  assert says in err and "\n" not in err


@pytest.mark.slow
def test_until_decided_extends_two_real_studies_and_stops_when_clear(tmp_path, capsys):
  """An MLP trained at lr 1e-2 (~0.8 after its 11 steps) against lr 1e-6 (chance level, ~0.1): decided at the
  first look, after the two 2-seed studies were extended to 4 seeds each (vmapped, as the studies were)."""
  tiny = ["model.widths=(16,)", "train.epochs=1", "train.batch_size=128", "train.histogram_every=1000"]
  dirs = {}
  for name, extra in (("good", ["optim.lr=1e-2"]), ("frozen", ["optim.lr=1e-6"])):
    config = jaxflow.load_config(config_path("digits_mlp.py"), [*tiny, *extra])
    dirs[name] = str(tmp_path / name)
    jaxflow.seeds(config, dirs[name], seeds=2, vary="init", mode="vmap", plots=False)
  args = [dirs["good"], dirs["frozen"], "--until-decided", "--first=4", "--round=2", "--max_seeds=8", "--mode=vmap"]
  assert cli.main(["jaxflow", "seeds", "compare", *args, "--quiet"]) == 0
  verdict, numbers = capsys.readouterr().out.strip().splitlines()
  result = json.loads(numbers)
  assert result["decision"] == "a_better" and result["seeds_per_arm"] == 4
  assert verdict.startswith(f"{dirs['good']} is better") and result["p_a_beats_b"]["p"] == 1.0
  finals = {}
  for name, path in dirs.items():
    with open(os.path.join(path, "report.json")) as f:
      seeds = json.load(f)["sweeps"][0]["seeds"]
    assert len(seeds) == 4 and os.path.isdir(os.path.join(path, "init", "seed_003"))
    finals[name] = [s["final"] for s in seeds]
  assert result["difference"] == pytest.approx(np.mean(finals["good"]) - np.mean(finals["frozen"]))
  again = jaxflow.seeds_until_decided(dirs["good"], dirs["frozen"], first=4, round_size=2, max_seeds=8, mode="vmap")
  assert again["difference"] == result["difference"]  # a rerun trains nothing new and says the same
  assert "seeds_until_decided" in jaxflow.__all__
