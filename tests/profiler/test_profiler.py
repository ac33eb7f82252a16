"""jaxflow profile end to end: bad flags, and one run (digits MLP, 3 epochs, batch sizes 1 and 8, f32/bf16/int8,
with a trace) shared by the report, trace, compare and accuracy tests; the accuracy tolerances are stated in
tests/profiler/test_precision_variants.py."""

from __future__ import annotations

import gzip
import json
import os
import shutil

import jax
import numpy as np
import pytest
from PIL import Image

import jaxflow
from jaxflow import cli
from jaxflow.config import ConfigError
from jaxflow.precision import variants as precision
from jaxflow.profiler import (
  compare,
  plots,
  timing,
)
from jaxflow.profiler import report as profiler_report
from jaxflow.profiler.run import parse_batch_sizes, run_profile
from tests.conftest import config_path
from tests.profiler.test_precision_variants import INT8_ACCURACY_POINTS, INT8_OUTPUT_RTOL


def test_bad_flags_are_one_line_config_errors(tmp_path):
  config = jaxflow.load_config(config_path("digits_mlp.py"))
  workdir = tmp_path / "never"
  for kw, flag in (
    ({"batch_sizes": "1,x"}, "--batch-sizes"),
    ({"batch_sizes": "0"}, "--batch-sizes"),
    ({"batch_sizes": ""}, "--batch-sizes"),
    ({"precisions": "f32,fp8"}, "--precisions"),
    ({"precisions": ","}, "--precisions"),
  ):
    with pytest.raises(ConfigError) as e:
      run_profile(config, str(workdir), **kw)
    assert flag in str(e.value) and "allowed" in str(e.value) and "\n" not in str(e.value)
  assert not workdir.exists()
  assert parse_batch_sizes("256, 1,32,1") == [1, 32, 256] and precision.parse_precisions("int8,bf16") == [
    "f32",
    "int8",
    "bf16",
  ]


def test_cli_bad_flag_exits_2(tmp_path, capsys):
  from jaxflow import cli

  code = cli.main(
    [
      "jaxflow",
      "profile",
      f"--config={config_path('digits_mlp.py')}",
      f"--workdir={tmp_path / 'w'}",
      "--precisions=f64",
    ]
  )
  err = capsys.readouterr().err.strip()
  assert code == 2 and len(err.splitlines()) == 1 and "--precisions" in err and "f32, bf16, int8" in err
  assert not (tmp_path / "w").exists()


def test_compare_refuses_a_folder_without_a_report(tmp_path):
  with pytest.raises(ConfigError, match="holds no profile report"):
    compare.compare_reports(str(tmp_path), str(tmp_path))


# --------------------------------------------------------------------------------------------------
# One end-to-end run (trained weights: the accuracy tests need them)


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
  """One profile through the command line's success path (`--quick`: the QUICK protocol, small peak sizes)."""
  workdir = str(tmp_path_factory.mktemp("profile") / "mlp")
  args = ["--config.train.epochs=3", "--batch_sizes=1,8", "--precisions=f32,bf16,int8", "--trace", "--quick"]
  code = cli.main(["jaxflow", "profile", f"--config={config_path('digits_mlp.py')}", *args, f"--workdir={workdir}"])
  assert code == 0
  with open(os.path.join(workdir, "report.json")) as f:
    report = json.load(f)
  assert report["protocol"]["repeats"] == timing.QUICK.repeats  # --quick reached the profiler
  return workdir, report


@pytest.mark.slow
def test_plots_false_writes_the_report_without_pngs(profiled, tmp_path):
  """`jaxflow.profile(..., plots=False)` (experiments/hardware's workers): report.json and report.md, no plots/."""
  workdir, report = profiled
  written = profiler_report.write(dict(report), str(tmp_path), draw=False)
  assert not (tmp_path / "plots").exists() and os.path.isfile(written["md"])
  assert "Plots: none (plots=False)" in open(written["md"]).read()
  assert json.load(open(tmp_path / "report.json"))["plots"] == {}
  assert os.listdir(os.path.join(workdir, "plots"))  # the default draws them
  nothing = profiler_report.markdown(dict(report, plots={}))  # asked for, but no results to draw
  assert "Plots: none (nothing to draw)" in nothing and "plots=False" not in nothing


@pytest.mark.slow
def test_report_files_and_schema(profiled):
  workdir, report = profiled
  on_disk = json.load(open(os.path.join(workdir, "report.json")))
  assert on_disk["schema"] == "jaxflow.profile" and on_disk["schema_version"] == 1
  for key in (
    "config",
    "config_hash",
    "model",
    "problem",
    "weights",
    "protocol",
    "environment",
    "devices",
    "not_applicable",
    "trace",
  ):
    assert key in on_disk, key
  assert on_disk["environment"]["versions"]["jax"] == jax.__version__ and "xla_flags" in on_disk["environment"]
  assert on_disk["weights"]["source"] == "trained" and os.path.isdir(os.path.join(workdir, "train", "checkpoints"))
  device = on_disk["devices"][0]
  assert device["name"].startswith("cpu:0") and report["devices"][0]["name"] == device["name"]
  assert {(r["precision"], r["batch_size"]) for r in device["inference"]} == {
    (p, b) for p in ("f32", "bf16", "int8", "int8_weights") for b in (1, 8)
  }
  for row in device["inference"]:
    assert row["fused_vs_unfused"]["within_tolerance"], row["fused_vs_unfused"]  # the honesty check, on every row
    assert (
      row["fused_vs_eager"]["within_tolerance"] and row["jaxpr"]["dispatched_per_call"] >= row["jaxpr"]["primitives"]
    )
    assert set(row["timings"]) == {"eager", "unfused", "nofusion", "jit", "aot"} and all(
      t["p10_s"] <= t["median_s"] <= t["p90_s"] for t in row["timings"].values()
    )
    assert (
      row["nofusion"]["hlo"]["multi_op_fusions"] == 0 and row["nofusion"]["vs_fused"]["within_tolerance"]
    )  # really unfused, same result
    assert (
      row["cost"]["flops"] > 0 and row["hlo"]["ops"] >= row["hlo"]["fusions"] >= 1 and row["compile"]["compile_s"] > 0
    )
    # The speedup is the ratio of the reported medians (how much faster fusing is, a speed claim, is measured by
    # profiling/run_suite.py, not asserted here: a loaded 2-core machine can invert it for a tiny model).
    times = {k: t["median_s"] for k, t in row["timings"].items()}
    assert row["fusion_speedup"]["unfused_over_aot"] == pytest.approx(times["unfused"] / times["aot"], rel=1e-9)
    assert row["memory"]["argument_bytes"] > 0 and row["roofline"]["intensity"] > 0
  assert device["autotune"]["applicable"] is False and "XLA:CPU has no kernel autotuner" in device["autotune"]["reason"]
  training = device["training"]
  assert 0 <= training["host_fed"]["input_share_serial"] <= 1
  step = training["step"]  # examples/s is the batch over the reported (median) step time
  assert step["median_s"] * step["examples_per_s"] == pytest.approx(training["batch_size"], rel=0.01)
  timed = [step, *training["host_fed"]["timings"].values()] + [
    training[k]["timing"] for k in ("async", "dispatch_k") if "timing" in training.get(k, {})
  ]
  for t in timed:  # every timed row: ordered quantiles over its repeats
    assert 0 < t["min_s"] <= t["p10_s"] <= t["median_s"] <= t["p90_s"] and t["n"] >= timing.QUICK.min_repeats, t
  # Multi-stream: one entry per batch size measured (the smallest and largest), each gain the ratio of
  # the per-batch times it reports, every timing ordered.
  assert sorted(m["batch_size"] for m in device["multistream"]) == [1, 8]
  for m in device["multistream"]:
    a = m["async_dispatch"]
    assert (
      a["gain"] == pytest.approx(a["synced_per_batch_s"] / a["dispatched_per_batch_s"], rel=1e-9)
      and a["synced_per_batch_s"] > 0
    )
    assert a["synced_per_batch_s"] * m["k"] == pytest.approx(m["timings"]["synced"]["median_s"], rel=1e-9)
    assert all(0 < t["p10_s"] <= t["median_s"] <= t["p90_s"] for t in m["timings"].values())
  md = open(os.path.join(workdir, "report.md")).read()
  for heading in (
    "## Findings",
    "### Inference latency",
    "### Roofline (AOT program)",
    "### Cost and memory",
    "### Fusion and compilation",
    "### Training",
    "### Multi-stream",
    "## Not applicable here",
    "## Trace",
  ):
    assert heading in md, heading
  assert (
    "| precision | batch | eager model code (no jit) | unfused (op by op) | compiled, no fusion | jit | AOT compiled |"
    in md
  )
  for name, rel in on_disk["plots"].items():
    path = os.path.join(workdir, rel)
    with open(path, "rb") as f:
      assert f.read(8) == b"\x89PNG\r\n\x1a\n", name
    with Image.open(path) as image:
      assert image.size[0] >= 400 and image.size[1] >= 300 and len(np.unique(np.asarray(image.convert("L")))) > 20, (
        name
      )  # drawn, not blank


def _md_tables(md: str) -> list[list[str]]:
  """Each Markdown table of `md` as its header cells."""
  tables, previous = [], ""
  for line in md.splitlines():
    if line.startswith("|") and not previous.startswith("|"):
      tables.append([c.strip() for c in line.strip().strip("|").split("|")])
    previous = line
  return tables


@pytest.mark.slow
def test_report_tables_notes_and_roofs_do_not_confuse(profiled):
  workdir, _ = profiled
  md = open(os.path.join(workdir, "report.md")).read()
  report = json.load(open(os.path.join(workdir, "report.json")))
  tables = _md_tables(md)
  assert len(tables) >= 8 and all(len(t) <= 8 for t in tables), [t for t in tables if len(t) > 8]
  bullets = [line for line in md.splitlines() if line.startswith("- ")]
  assert len(bullets) == len(set(bullets)), [b for b in bullets if bullets.count(b) > 1]
  assert len([p for p in md.split("\n\n") if "jax.disable_jit()" in p]) == 1  # the variants defined once
  assert "share of examples predicted as f32 does (1.000 = all)" in md and "same prediction as f32 |" not in md
  assert "ms per call (one batch)" in md and "per example they fall as the batch grows" in md
  device = report["devices"][0]
  ladder = sorted(device["peaks"]["copy_ladder"], key=lambda e: e["array_bytes"])
  used = [e["bytes_per_s"] for e in ladder]
  assert used == sorted(used, reverse=True) and all("measured_bytes_per_s" in e for e in ladder)
  assert "A smaller working set is never reported slower" in md
  # The plot draws, for each row, exactly the roof the table's attainable and efficiency use.
  drawn = plots.row_roofs(device)
  assert sum(len(rows) for rows in drawn.values()) == len(device["inference"])
  for (_, peak, bandwidth, _), rows in drawn.items():
    for r in rows:
      rf = r["roofline"]
      assert rf["attainable_flops_per_s"] == pytest.approx(min(peak, bandwidth * rf["intensity"]), rel=1e-9)
      assert rf["above_roof"] == (rf["achieved_flops_per_s"] > rf["attainable_flops_per_s"])
  if any(r["roofline"]["above_roof"] for r in device["inference"]):
    assert "Above their roof:" in md


@pytest.mark.slow
def test_int8_and_bf16_accuracy_within_stated_tolerance(profiled):
  _, report = profiled
  acc = report["devices"][0]["precision"]
  assert acc["f32"]["value"] > 0.8  # trained weights on the real test split (360 digits)
  for name in ("int8", "int8_weights", "bf16"):
    assert abs(acc[name]["change_vs_f32"]) <= INT8_ACCURACY_POINTS, (name, acc[name])
    assert acc[name]["max_abs_output_diff"] <= INT8_OUTPUT_RTOL * acc[name]["max_abs_reference_output"], (
      name,
      acc[name],
    )
  choices = report["devices"][0]["calibration"]["choices"]
  assert {(c["granularity"], c["method"]) for c in choices} == {
    (g, m) for g in ("tensor", "channel") for m in ("max", "percentile")
  }


@pytest.mark.slow
def test_trace_files_exist_and_parse(profiled):
  workdir, report = profiled
  logdir = os.path.join(workdir, "trace")
  runs = os.listdir(os.path.join(logdir, "plugins", "profile"))
  assert len(runs) == 1
  files = os.listdir(os.path.join(logdir, "plugins", "profile", runs[0]))
  assert any(f.endswith(".xplane.pb") for f in files) and any(f.endswith(".trace.json.gz") for f in files)
  trace_json = next(f for f in files if f.endswith(".trace.json.gz"))
  with gzip.open(os.path.join(logdir, "plugins", "profile", runs[0], trace_json), "rt") as f:
    events = json.load(f)["traceEvents"]
  names = {e.get("name") for e in events}
  assert "train step" in names and "inference f32 batch 8" in names  # the profiled steps are annotated in it
  assert report["trace"]["events"] == len(events) > 0
  # The XSpace protobuf is what TensorBoard's profile plugin (and XProf) read from plugins/profile/<run>/:
  # it parses, and its host plane holds the annotated steps and XLA's executions of the profiled programs.
  xplane = next(f for f in files if f.endswith(".xplane.pb"))
  space = jax.profiler.ProfileData.from_file(os.path.join(logdir, "plugins", "profile", runs[0], xplane))
  host_events = {e.name for line in space.find_plane_with_name("/host:CPU").lines for e in line.events}
  assert {"train step", "inference f32 batch 8", "inference int8 batch 8"} <= host_events


@pytest.mark.slow
def test_compare_two_reports(profiled, tmp_path, capsys):
  workdir, _ = profiled
  other = tmp_path / "gpu_machine"
  other.mkdir()
  fake = json.load(open(os.path.join(workdir, "report.json")))
  fake["devices"][0]["name"] = "gpu:0 Pretend GPU"
  for row in fake["devices"][0]["inference"]:
    row["timings"]["aot"]["median_s"] /= 4
  json.dump(fake, open(other / "report.json", "w"))
  md = compare.compare_reports(workdir, str(other))
  assert "A cpu:0" in md and "B gpu:0 Pretend GPU" in md and "Same config" in md
  assert "(4.00x)" in md  # B's AOT time relative to A's first column
  for heading in (
    "## Peaks",
    "## Inference latency",
    "## Test metric by precision",
    "## Training",
    "## Multi-stream",
    "## Kernel auto-tuning",
  ):
    assert heading in md
  fake["config_hash"] = "0" * 64  # as an earlier jaxflow hashed the same config: still the same, field by field
  json.dump(fake, open(other / "report.json", "w"))
  assert "Same config" in compare.compare_reports(workdir, str(other))
  fake["config"]["optim"]["lr"] = 0.5
  json.dump(fake, open(other / "report.json", "w"))
  assert "different configs" in compare.compare_reports(workdir, str(other)) and "optim.lr" in compare.compare_reports(
    workdir, str(other)
  )
  from jaxflow import (
    cli,  # the verb: `jaxflow profile compare A B` prints the same Markdown
  )

  assert cli.main(["jaxflow", "profile", "compare", workdir, str(other)]) == 0
  assert "B gpu:0 Pretend GPU" in capsys.readouterr().out
  shutil.rmtree(other)
