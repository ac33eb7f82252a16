"""jaxflow.seeds.agreement / spread on hand-made predictions (exact values against an independent numpy
computation), and the one_bit perturbation bit by bit on the real init path (run.assemble)."""

from __future__ import annotations

import itertools

import jax
import numpy as np
import pytest

import jaxflow
from jaxflow import rng
from jaxflow.run import assemble
from jaxflow.seeds import agreement, spread, sweeps
from tests.conftest import config_path

# 3 seeds x 5 examples x 3 classes; labels [0, 1, 2, 0, 1].
LABELS = np.array([0, 1, 2, 0, 1])
PROBS = np.array(
  [
    [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.6, 0.3, 0.1], [0.5, 0.4, 0.1]],
    [[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8], [0.3, 0.6, 0.1], [0.1, 0.8, 0.1]],
    [[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.5, 0.1, 0.4], [0.2, 0.7, 0.1], [0.2, 0.7, 0.1]],
  ]
)


def _by_hand():
  """The same numbers written out with loops: argmax per seed, every pair, np.corrcoef."""
  preds = [[int(np.argmax(p)) for p in seed] for seed in PROBS]  # [[0,1,2,0,0], [0,0,2,1,1], [0,1,0,1,1]]
  pairs = list(itertools.combinations(range(3), 2))
  disagree = [np.mean([a != b for a, b in zip(preds[i], preds[j])]) for i, j in pairs]
  correct = [[int(p == y) for p, y in zip(seed, LABELS)] for seed in preds]
  corr = [np.corrcoef(correct[i], correct[j])[0, 1] for i, j in pairs]
  mean_probs = PROBS.mean(axis=0)
  ensemble = np.mean([int(np.argmax(p)) == y for p, y in zip(mean_probs, LABELS)])
  single = np.mean([np.mean(c) for c in correct])
  per_example = [np.mean([preds[i][n] != preds[j][n] for i, j in pairs]) for n in range(5)]
  return preds, float(np.mean(disagree)), float(np.mean(corr)), float(ensemble), float(single), per_example


def test_disagreement_correlation_and_ensemble_match_a_hand_computation():
  preds, disagree, corr, ensemble, single, per_example = _by_hand()
  assert agreement.predictions(PROBS).tolist() == preds
  out = agreement.summarize(PROBS, LABELS, top=2)
  assert out["disagreement"]["mean"] == pytest.approx(disagree) and disagree == pytest.approx(8 / 15)
  assert out["correctness_correlation"]["mean"] == pytest.approx(corr)
  assert out["ensemble"]["accuracy"] == pytest.approx(ensemble) and ensemble == pytest.approx(0.8)
  assert out["ensemble"]["mean_single_accuracy"] == pytest.approx(single)
  assert out["ensemble"]["gain"] == pytest.approx(ensemble - single)
  assert out["arrays"]["per_example_disagreement"] == pytest.approx(per_example)
  assert np.mean(per_example) == pytest.approx(disagree)  # the per-example view averages to the pairwise one
  assert out["arrays"]["disputed"].tolist() == [1, 2]  # the two most disputed (2/3 each; ties by index)
  assert out["examples_any_disagreement"] == pytest.approx(0.8)
  lo, hi = out["disagreement"]["ci95"]
  assert lo <= disagree <= hi


def test_the_bootstrap_resamples_seeds_and_never_pairs_a_seed_with_its_copy():
  everyone_differs = 1.0 - np.eye(4)  # a seed drawn twice would add pairs of disagreement 0
  assert agreement.bootstrap_pairwise_ci(everyone_differs) == [1.0, 1.0]
  constant = agreement.correctness_correlation(np.array([[0, 1], [0, 0]]), np.array([0, 1]))
  assert constant[1, 1] == pytest.approx(1.0) and np.isnan(constant[0, 1]) and np.isnan(constant[0, 0])
  std = agreement.std_with_ci([0.90, 0.92, 0.94, 0.97])
  assert std["std"] == pytest.approx(np.std([0.90, 0.92, 0.94, 0.97], ddof=1))
  assert std["ci95"][0] <= std["std"] <= std["ci95"][1]
  assert agreement.std_with_ci([0.5])["std"] is None


def test_spread_of_a_sweep_and_why_there_is_none():
  summaries = [
    {"status": "completed", "final": {"eval": {"accuracy": a, "loss": loss}}} for a, loss in [(0.9, 0.3), (0.8, 0.5)]
  ]
  out, arrays = spread.sweep_spread(summaries, "a regression problem: no class predictions to compare")
  assert arrays is None and out["agreement"] is None and "regression" in out["why_no_agreement"]
  assert out["accuracy_std"]["std"] == pytest.approx(np.std([0.9, 0.8], ddof=1))
  assert out["loss_std"]["std"] == pytest.approx(np.std([0.3, 0.5], ddof=1))
  assert "over seeds" in out["ci_method"]
  assert spread.hardware("cpu", [])["applicable"] is False and "no GPU here" in spread.hardware("cpu", [])["why"]


def test_flip_lowest_bit_is_one_bit_of_the_mantissa():
  x = np.array([[1.0, -2.5], [3.0, 0.0]], np.float32)
  y = rng.flip_lowest_bit(x, 2)
  assert (x.view(np.uint32) ^ y.view(np.uint32)).tolist() == [[0, 0], [1, 0]]
  assert y[1, 0] == np.nextafter(np.float32(3.0), np.float32(4.0))  # 3.0 -> the next float up
  assert x[1, 0] == 3.0  # a copy


@pytest.mark.slow
def test_one_bit_changes_exactly_one_bit_of_one_leaf_of_the_init_and_a_group_starts_alike():
  config = jaxflow.load_config(config_path("digits_mlp.py"), ["model.widths=(32,)", "train.epochs=1"])
  compiled = assemble.Compiled()
  base = jax.tree.leaves(assemble.assemble([config], compiled=compiled).state.params)
  configs = [sweeps.seed_config(config, i, ("one_bit",)) for i in range(3)]
  group = jax.tree.leaves(assemble.assemble(configs, compiled=compiled).state.params)  # the vmap mode's init
  sites = set()
  for i, c in enumerate(configs):
    one = jax.tree.leaves(assemble.assemble([c], compiled=compiled).state.params)  # the sequential mode's init
    site = rng.one_bit_site(c.seeds.one_bit, base)
    sites.add((site["leaf"], site["index"]))
    for leaf, (a, b, g) in enumerate(zip(base, one, group)):
      xor = np.asarray(a).view(np.uint32) ^ np.asarray(b).view(np.uint32)
      if leaf == site["leaf"]:
        assert np.count_nonzero(xor) == 1 and xor.reshape(-1)[site["index"]] == 1  # bit 0 of that one element
      else:
        assert not xor.any()
      assert np.array_equal(np.asarray(b).view(np.uint32), np.asarray(g)[i].view(np.uint32))  # bitwise
  assert len(sites) == 3  # the seed chooses the weight
  config.lock()  # as the CLI passes it: the one_bit field is still added
  assert sweeps.seed_config(config, 4, ("one_bit",)).seeds.one_bit == config.seed + 4
  unperturbed = sweeps.seed_config(config, 0, ("init",))
  assert rng.one_bit_seed(unperturbed) is None and rng.one_bit_seed(configs[2]) == config.seed + 2


@pytest.mark.slow
def test_a_graph_study_finishes_and_says_why_it_has_no_example_wise_view(tmp_path):
  """Graph batches are lists built on the host: the study used to train every seed and then crash there."""
  config = jaxflow.load_config(config_path("karate_gcn.py:test"))
  report = jaxflow.seeds(config, str(tmp_path), seeds=2, mode="sequential", plots=False)
  sweep = report["sweeps"][0]
  assert [s["status"] for s in sweep["seeds"]] == ["completed", "completed"]
  assert sweep["spread"]["agreement"] is None and "a graph dataset" in sweep["spread"]["why_no_agreement"]
  assert sweep["spread"]["accuracy_std"]["std"] is not None
