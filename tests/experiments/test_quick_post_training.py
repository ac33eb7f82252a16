"""experiments/post_training: the --quick run writes the outputs the experiments/ standard asks for.

With tests/experiments/quick.py's checks of the standard's outputs: the structure is checked, not the numbers (a
quick run trains three steps of a 16-unit MLP on two seeds), plus what this study adds: an arm per precision with
each seed's exported accuracy, every optimization the question names measured or marked not applicable, and
memory per batch size. Run in the test worker (tests/experiments/quick.py says why).
"""

from __future__ import annotations

import pytest

from tests.experiments.quick import check_standard_outputs, quick_outputs


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> str:
  return quick_outputs(tmp_path_factory, "post_training")


@pytest.mark.slow
def test_quick_run_writes_the_standard_outputs(outputs):
  text, results = check_standard_outputs(outputs)
  assert set(results["arms"]) == {"MLP f32", "MLP bf16", "MLP int8"}
  for arm in results["arms"].values():
    assert arm["mode"] == "sequential"
    for row in arm["per_seed"]:
      assert 0.0 <= row["accuracy"] <= 1.0 and row["examples"] == 360
  compared = {(row["comparison"], row["a"], row["b"]) for row in results["differences"]}
  assert {("MLP: test accuracy", p, "f32") for p in ("bf16", "int8")} <= compared


@pytest.mark.slow
def test_every_optimization_is_measured_or_marked_not_applicable(outputs):
  text, results = check_standard_outputs(outputs)
  mlp = results["findings"]["MLP"]
  for size in mlp["latency"].values():
    assert {"f32", "bf16", "int8", "bf16_speedup", "int8_speedup"} <= set(size)
  for size in mlp["fusion"].values():
    assert size["fusions"]["fused"] < size["fusions"]["no fusion"]
    assert size["max_abs_output_difference"] < 1e-4  # fusion must not change the outputs
  assert all({"1 caller", "2 callers (threads)"} <= set(s) for s in mlp["streams"].values())
  autotune = mlp["autotune"]
  assert autotune["applicable"] or autotune["reason"].startswith("not applicable on this device")
  for by_size in mlp["memory"].values():
    assert all(m["total"] > 0 for m in by_size.values())
  for heading in ("Kernel auto-tuning", "Dynamic tensor memory", "Layer and tensor fusion", "Multi-stream"):
    assert heading in text
