"""experiments/activations and experiments/initialization: the --quick runs write the outputs the experiments/
standard asks for.

Both studies one after another in the test worker (the compilation cache paid once; tests/experiments/quick.py), the
structure checked and not the numbers (three steps of a 16-unit MLP on two seeds), plus what each study adds: the
per-layer statistics jaxflow logged (`train.layer_stats_every=1`) and the learning curve per seed; for
initialization, the at-init arms next to the trained ones and the distinct units a constant init leaves (1 per
layer: the symmetry is never broken, which holds after three steps as after three hundred).
"""

from __future__ import annotations

import os

import pytest

from tests.experiments.quick import check_standard_outputs, run_quick


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> str:
  return run_quick(tmp_path_factory, ("activations", "initialization"))


@pytest.mark.slow
def test_activations_quick_run_writes_the_standard_outputs_and_layer_statistics(outputs):
  text, results = check_standard_outputs(os.path.join(outputs, "activations"))
  assert set(results["arms"]) == {"step", "relu"}  # a quick run stays cheap: two arms
  for name, arm in results["arms"].items():
    assert arm["mode"] == "sequential" and f"model.activation={name}" in arm["overrides"]
    for row in arm["per_seed"]:
      assert len(row["curve"]) == 1  # one epoch: one point of the learning curve
      assert {"dense_0", "head"} <= set(row["layers"]["grad_norm"])
      assert "dense_0" in row["layers"]["act_std"] and "head" not in row["layers"]["act_std"]
  compared = {(row["comparison"], row["a"], row["b"]) for row in results["differences"]}
  assert ("accuracy", "step", "relu") in compared and ("|grad_ratio_start|", "step", "relu") in compared
  assert "Parameter-gradient norm per layer" in text


@pytest.mark.slow
def test_initialization_quick_run_measures_init_and_trained_and_a_constant_init_keeps_units_identical(outputs):
  _, results = check_standard_outputs(os.path.join(outputs, "initialization"))
  names = {"relu / constant", "relu / he"}
  assert set(results["arms"]) == names | {f"{n} at init" for n in names}
  assert any(o == "optim.lr=1e-12" for o in results["arms"]["relu / he at init"]["overrides"])
  constant, he = results["arms"]["relu / constant"], results["arms"]["relu / he"]
  for row in constant["per_seed"]:
    assert row["min_distinct_units"] == 1  # every unit of the layer is the same function
  for row in he["per_seed"]:
    assert row["min_distinct_units"] == 16  # the quick MLP's 16 units, all different
  findings = results["findings"]["relu / he"]
  assert findings["layers_init"]["grad_norm"] and findings["layers_trained"]["act_std"]
  assert ("accuracy", "relu / constant", "relu / he") in {
    (r["comparison"], r["a"], r["b"]) for r in results["differences"]
  }
