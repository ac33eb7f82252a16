"""`jaxflow profile --model`: the exported program timed beside the training jit and op by op, what each
precision buys next to what it costs in accuracy, and a recommendation per batch size."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from jaxflow.profiler import timing
from jaxflow.profiler.model_profile import profile_model, recommend
from tests.conftest import ROOT

QUICK = timing.Protocol(warmup=1, repeats=4, min_repeats=2, max_seconds=0.2, rounds=2)


@pytest.mark.slow
def test_the_exported_model_is_timed_beside_the_training_jit_with_a_recommendation(cnn_model, tmp_path):
  report = profile_model(cnn_model, str(tmp_path / "prof"), batch_sizes="1,64", protocol=QUICK, quiet=True)
  (device,) = report["devices"]
  assert [b["batch_size"] for b in device["batches"]] == [1, 64]
  one, many = device["batches"]
  for b in (one, many):
    medians = b["median_seconds"]
    assert {"exported", "training_jit", "exported_bf16", "exported_int8", "exported_donated"} <= set(medians)
    assert all(s > 0 for s in medians.values())
    assert b["exported_over_training_jit"] == pytest.approx(medians["exported"] / medians["training_jit"])
    assert b["memory"]["exported"]["output_size_in_bytes"] == b["batch_size"] * 10 * 4  # float32 probabilities
    assert b["donation_usable"] is False  # uint8 pixels in, float32 out: no buffer to reuse
    assert b["streams"]["k"] == 8 and b["streams"]["gain"] > 0
  assert one["op_by_op_over_exported"] > 1  # one dispatch per primitive against one fused program
  assert many["op_by_op_over_exported"] is None  # op by op only at the small sizes
  assert set(report["accuracy"]) == {"f32", "bf16", "int8"}
  assert report["accuracy"]["f32"]["value"] == report["card"]["evaluation"]["artifact"]["value"]
  assert [r["batch_size"] for r in report["recommendation"]] == [1, 64]
  assert device["autotune"]["applicable"] is False and "XLA:CPU has no kernel autotuner" in device["autotune"]["reason"]
  written = json.loads((tmp_path / "prof" / "report.json").read_text())
  assert written["recommendation"] == json.loads(json.dumps(report["recommendation"]))
  assert "## Recommendation" in (tmp_path / "prof" / "report.md").read_text()


def test_the_recommendation_leaves_out_a_precision_that_lost_accuracy():
  devices = [
    {"name": "cpu", "batches": [{"batch_size": 8, "median_seconds": {"exported": 2.0, "exported_int8": 1.0}}]},
    {"name": "gpu", "batches": [{"batch_size": 8, "median_seconds": {"exported": 1.5, "exported_int8": 0.5}}]},
  ]
  fine = {"f32": {"value": 0.9}, "int8": {"value": 0.895, "change_vs_f32": -0.005}}
  assert (recommend(devices, fine)[0]["device"], recommend(devices, fine)[0]["precision"]) == ("gpu", "int8")
  worse = {"f32": {"value": 0.9}, "int8": {"value": 0.85, "change_vs_f32": -0.05}}
  chosen = recommend(devices, worse)[0]
  assert (chosen["device"], chosen["precision"]) == ("gpu", "f32") and "int8" in chosen["based_on"]


@pytest.mark.slow
def test_the_cli_refuses_a_missing_model_in_one_line(tmp_path):
  done = subprocess.run(
    [sys.executable, "-m", "jaxflow.cli", "profile", f"--model={tmp_path / 'none'}", f"--workdir={tmp_path / 'p'}"],
    capture_output=True,
    text=True,
    cwd=ROOT,
    timeout=120,
  )
  assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
  assert "no such folder" in done.stderr and not os.path.exists(tmp_path / "p")
