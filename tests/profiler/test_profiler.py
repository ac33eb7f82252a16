"""jaxflow profile: the timer's honesty, HLO counting, roofline arithmetic, precision variants, reports.

Unit tests use tiny shapes and `timing.QUICK`; one end-to-end run (digits MLP, 2 epochs, batch sizes
1 and 8, f32/bf16/int8, with a trace) is shared by the report, trace, compare and accuracy tests.

Stated tolerances (the honesty tests of the issue):
- fused == unfused: max |difference| <= inference.FUSION_RTOL[precision] x max |output|: f32 1e-4 (a
  fused and an op-by-op matmul may sum in another order: ~1e-6 relative seen, so 1e-4 still catches any
  wrong op), bf16 2^-6 (intermediates rounded to bf16 at different points: a few bf16 ulps), int8 1e-3
  (a value on a rounding tie may quantize one step apart).
- int8 vs f32: test accuracy within INT8_ACCURACY_POINTS (2 points = 7 of the 360 test digits) and
  outputs within INT8_OUTPUT_RTOL = 5% of max |f32 output| (127 levels per tensor: ~0.4% rounding per
  layer input, a few layers deep, with margin); bf16 is held to the same; on random weights and inputs
  (unit test, all three digits families) outputs within the same 5%.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

import jaxflow
from jaxflow import cli, models
from jaxflow.config import ConfigError
from jaxflow.precision import quantize
from jaxflow.precision import variants as precision
from jaxflow.profiler import (
  compare,
  hlo,
  inference,
  opbyop,
  peaks,
  plots,
  roofline,
  timing,
)
from jaxflow.profiler import report as profiler_report
from jaxflow.profiler.run import parse_batch_sizes, run_profile
from tests.conftest import config_path

INT8_ACCURACY_POINTS = 0.02
INT8_OUTPUT_RTOL = 0.05

# --------------------------------------------------------------------------------------------------
# The timer refuses work it has not synchronized


@pytest.fixture(scope="module")
def heavy():
  """A jitted program that runs ~0.1-0.3 s on 2 CPU cores: long enough to still be running after dispatch."""
  fn = jax.jit(lambda x: jax.lax.fori_loop(0, 12, lambda _, y: jnp.tanh(y @ y), x))
  x = jnp.full((768, 768), 0.01, jnp.float32)
  jax.block_until_ready(fn(x))  # compiled
  return fn, x


def test_timer_refuses_a_function_that_returns_nothing(heavy):
  fn, x = heavy

  def dispatch_only(x):
    fn(x)  # dispatched asynchronously, result dropped: only the dispatch would be timed

  with pytest.raises(timing.UnsynchronizedError, match="returned no jax.Array"):
    timing.time_calls(dispatch_only, [(x,)], timing.QUICK)


def test_timer_refuses_a_function_that_returns_only_its_input(heavy):
  fn, x = heavy

  def returns_input(x):
    fn(x)
    return x

  with pytest.raises(timing.UnsynchronizedError, match="only arrays it was given"):
    timing.time_calls(returns_input, [(x,)], timing.QUICK)


def test_timer_refuses_work_left_running(heavy):
  fn, x = heavy
  kept = []

  def leaky(x):
    kept.append(fn(x))  # still computing when the returned value is ready
    # A value put on the device is ready at once. (A *computed* array would not do here: this backend
    # runs programs in order, so it would be ready only after fn's work, and the time would be honest.)
    return jax.device_put(np.float32(0))

  with pytest.raises(timing.UnsynchronizedError, match="still computing"):
    timing.time_calls(leaky, [(x,)], timing.QUICK)
  jax.block_until_ready(kept)


def test_timer_times_the_work_not_the_dispatch(heavy):
  import time

  fn, x = heavy
  start = time.perf_counter()
  out = fn(x)
  dispatch = time.perf_counter() - start  # what an unsynchronized timer would report
  jax.block_until_ready(out)
  timed = timing.time_calls(fn, [(x,), (x * 1.0,)], timing.QUICK)
  assert timed.median > 5 * dispatch, (timed.median, dispatch)
  assert timed.rotations == 2 and len(timed.seconds) >= timing.QUICK.min_repeats


def test_timing_statistics_and_protocol():
  t = timing.Timing([0.001 * i for i in range(1, 11)], rotations=3).to_dict()
  assert (
    t["median_s"] == pytest.approx(0.0055)
    and t["p10_s"] == pytest.approx(0.0019)
    and t["p90_s"] == pytest.approx(0.0091)
  )
  assert t["n"] == 10 and t["rotations"] == 3 and t["min_s"] == pytest.approx(0.001)
  with pytest.raises(ValueError, match="warmup"):
    timing.Protocol(warmup=0)
  p = timing.Protocol(rotate_bytes=1000, max_rotations=8)
  assert timing.rotations(10, p) == 8 and timing.rotations(400, p) == 3 and timing.rotations(10_000, p) == 2


# --------------------------------------------------------------------------------------------------
# HLO counting and roofline arithmetic

HANDWRITTEN_HLO = """HloModule test, entry_computation_layout={(f32[8]{0})->f32[]}

%add (a: f32[], b: f32[]) -> f32[] {
  %a = f32[] parameter(0)
  %b = f32[] parameter(1)
  ROOT %s = f32[] add(%a, %b)
}

%fused_computation (p0: f32[8]) -> f32[8] {
  %p0 = f32[8]{0} parameter(0)
  %e = f32[8]{0} exponential(%p0)
  ROOT %m = f32[8]{0} multiply(%e, %p0)
}

%body (t: (s32[], f32[8])) -> (s32[], f32[8]) {
  %t = (s32[], f32[8]{0}) parameter(0)
  %i = s32[] get-tuple-element(%t), index=0
  %v = f32[8]{0} get-tuple-element(%t), index=1
  %f = f32[8]{0} fusion(%v), kind=kLoop, calls=%fused_computation
  %d = f32[8]{0} dot(%f, %f), lhs_contracting_dims={0}, rhs_contracting_dims={0}
  ROOT %r = (s32[], f32[8]{0}) tuple(%i, %f)
}

%cond (t: (s32[], f32[8])) -> pred[] {
  %t = (s32[], f32[8]{0}) parameter(0)
  %i = s32[] get-tuple-element(%t), index=0
  %n = s32[] constant(4)
  ROOT %lt = pred[] compare(%i, %n), direction=LT
}

ENTRY %main (x: f32[8]) -> f32[] {
  %x = f32[8]{0} parameter(0)
  %z = s32[] constant(0)
  %t = (s32[], f32[8]{0}) tuple(%z, %x)
  %w = (s32[], f32[8]{0}) while(%t), condition=%cond, body=%body
  %v = f32[8]{0} get-tuple-element(%w), index=1
  %zero = f32[] constant(0)
  ROOT %sum = f32[] reduce(%v, %zero), dimensions={0}, to_apply=%add
}
"""


def test_hlo_stats_of_a_handwritten_module():
  s = hlo.hlo_stats(HANDWRITTEN_HLO)
  # kernels: while, reduce (ENTRY); fusion, dot (body); compare (cond). The reduce's `add` is not one.
  assert s["opcodes"] == {"while": 1, "reduce": 1, "fusion": 1, "dot": 1, "compare": 1}
  assert (
    s["ops"] == 5
    and s["fusions"] == 1
    and s["multi_op_fusions"] == 1
    and s["fusion_kinds"] == {"kLoop": 1}
    and s["while_loops"] == 1
  )
  assert s["fused_instructions"] == 2  # exponential, multiply
  assert s["matmuls"] == {"dot f32,f32->f32": 1}


def test_hlo_stats_of_a_known_jitted_function():
  compiled = jax.jit(lambda x: jnp.sin(x) * 2.0 + 1.0).lower(jnp.ones((128,))).compile()
  s = hlo.hlo_stats(compiled.as_text())
  assert (
    s["fusions"] == s["multi_op_fusions"] == 1 and s["ops"] == 1 and s["matmuls"] == {}
  )  # XLA fuses the elementwise chain into one kernel
  assert s["fused_instructions"] >= 3  # sin, multiply, add (and their broadcast constants)
  c = hlo.cost(compiled)
  assert c["flops"] == pytest.approx(256) and c["bytes_accessed"] == pytest.approx(
    1024
  )  # 2 flops/elem; 128 f32 in + out
  assert c["arithmetic_intensity"] == pytest.approx(0.25)
  m = hlo.memory(compiled)
  assert m["argument_bytes"] == 512 and m["output_bytes"] == 512
  closed = jax.make_jaxpr(lambda w, x: jnp.tanh(x @ w))(jnp.ones((4, 4), jnp.bfloat16), jnp.ones((2, 4), jnp.bfloat16))
  assert (
    hlo.jaxpr_matmul_dtypes(closed) == {"dot_general bfloat16,bfloat16->bfloat16": 1}
    and hlo.count_jaxpr_eqns(closed) == 2
  )


def test_op_by_op_runs_every_primitive_of_a_scan():
  def f(w, xs):
    return jax.lax.scan(lambda c, x: (jnp.tanh(c @ w + x), c.sum()), jnp.zeros(3), xs)

  w, xs = jnp.eye(3) * 0.5, jnp.arange(12.0).reshape(4, 3)
  program = opbyop.OpByOp(f, w, xs)
  (carry, ys), (carry_ref, ys_ref) = program(w, xs), jax.jit(f)(w, xs)
  np.testing.assert_allclose(carry, carry_ref, rtol=1e-6)
  np.testing.assert_allclose(ys, ys_ref, rtol=1e-6)
  assert program.dispatches >= 4 * 4  # dot, add, tanh, reduce_sum on each of the 4 steps, each its own dispatch


def test_roofline_against_hand_values():
  # 1 GFLOP moving 0.1 GB: intensity 10 FLOP/B; peaks 100 GFLOP/s and 20 GB/s: ridge 5, compute bound, roof 100 GFLOP/s.
  r = roofline.roofline(flops=1e9, bytes_accessed=1e8, seconds=0.02, peak_flops=1e11, bandwidth=2e10)
  assert r["intensity"] == pytest.approx(10) and r["ridge"] == pytest.approx(5) and r["bound"] == "compute"
  assert r["attainable_flops_per_s"] == pytest.approx(1e11) and r["achieved_flops_per_s"] == pytest.approx(5e10)
  assert r["efficiency"] == pytest.approx(0.5) and r["limited_by"] == "compute"
  # intensity 1 below the ridge: memory bound, roof = 20 GB/s x 1 = 20 GFLOP/s;
  # 1e9 / 1.0 s = 1 GFLOP/s = 5% ... just at the overhead line
  r = roofline.roofline(flops=1e9, bytes_accessed=1e9, seconds=2.0, peak_flops=1e11, bandwidth=2e10)
  assert (
    r["bound"] == "memory"
    and r["attainable_flops_per_s"] == pytest.approx(2e10)
    and r["efficiency"] == pytest.approx(0.025)
  )
  assert r["limited_by"] == "overhead" and r["above_roof"] is False
  # faster than the roof allows: said, not clipped (the roof did not fit this program)
  r = roofline.roofline(flops=1e9, bytes_accessed=1e9, seconds=0.01, peak_flops=1e11, bandwidth=2e10)
  assert (
    r["efficiency"] == pytest.approx(5.0)
    and r["above_roof"] is True
    and r["limited_by"] == "memory (above the measured roof)"
  )
  assert (
    roofline.roofline(flops=None, bytes_accessed=1.0, seconds=1.0, peak_flops=1.0, bandwidth=1.0)["efficiency"] is None
  )


# --------------------------------------------------------------------------------------------------
# Precision variants on the real model families (random weights: unit level)


def _model(name: str):
  config = jaxflow.load_config(config_path(f"{name}.py"))
  model = models.create_model(config.model, output_dim=10)
  x = np.random.default_rng(0).random((16, 8, 8, 1), dtype=np.float32)
  params = jax.device_get(model.init(jax.random.key(0), x[:1])["params"])
  return model, params, x


def float64_outputs(model, params, x) -> np.ndarray:
  """The model's outputs computed in float64 (jax's x64 mode, the weights and inputs cast up): the reference
  every precision variant is compared with, not computed by any variant's forward."""
  with jax.enable_x64(True):
    up = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    return np.asarray(model.apply({"params": up}, np.asarray(x, np.float64)), np.float64)


@pytest.mark.parametrize("name", ["digits_mlp", "digits_cnn", "digits_rnn"])
def test_variants_compute_in_their_precision_and_fused_equals_unfused(name):
  model, params, x = _model(name)
  variants, calibration = precision.build_variants(
    model, params, ["f32", "bf16", "int8"], calibration_inputs=[x[:8], x[8:]]
  )
  by_name = {v.name: v for v in variants}
  assert set(by_name) == {"f32", "bf16", "int8", "int8_weights"}
  expected = {
    "f32": "float32,float32->float32",
    "bf16": "bfloat16,bfloat16->bfloat16",
    "int8": "int8,int8->int32",
    "int8_weights": "float32,float32->float32",
  }
  f32 = np.asarray(jax.jit(by_name["f32"].forward)(params, x))
  if name == "digits_rnn":  # flax's LSTM carries float32 state, so it cannot run in float64: f32 is the reference
    reference = f32
  else:
    # f32 against the same weights evaluated in float64 (outside the variants' code): float32 rounding only,
    # ~1e-7 relative per op over a few hundred-term dot products (measured 4e-7 of max |output|); 1e-5.
    reference = float64_outputs(model, params, x)
    assert np.abs(f32 - reference).max() <= 1e-5 * np.abs(reference).max()
  for v in variants:
    inputs = v.prepare(x)
    closed = jax.make_jaxpr(v.forward)(v.weights, inputs)
    kinds = {k.split(" ", 1)[1] for k in hlo.jaxpr_matmul_dtypes(closed)}
    assert kinds == {expected[v.name]}, (
      v.name,
      kinds,
    )  # every matmul: no silent upcast (PITFALLS: bf16 params under f32 modules)
    fused = np.asarray(jax.jit(v.forward)(v.weights, inputs), np.float32)
    assert np.abs(fused - reference).max() <= INT8_OUTPUT_RTOL * np.abs(reference).max(), v.name
    unfused = np.asarray(opbyop.OpByOp(v.forward, v.weights, inputs[:4])(v.weights, inputs[:4]), np.float32)
    assert np.abs(fused[:4] - unfused).max() <= inference.FUSION_RTOL[v.name] * np.abs(unfused).max(), v.name
  assert {layer["kind"] for layer in calibration.values()} == {
    "mlp": {"dense"},
    "cnn": {"conv", "dense"},
    "rnn": {"lstm", "dense"},
  }[model.__class__.__name__.lower()]


def test_quantize_kernel_and_activation_scales():
  w = np.array([[0.5, -2.0], [0.25, 1.0], [-0.1, 0.0]], np.float32)
  q, scale = quantize.quantize_kernel(w)
  assert q.dtype == np.int8 and scale == pytest.approx([0.5 / 127, 2.0 / 127])
  assert np.abs(q * scale - w).max() <= scale.max() / 2 + 1e-7  # round to nearest: at most half a step
  stats = {
    "max": 2.54,
    "percentile": 1.27,
    "channel_max": np.array([2.54, 0.0, 1.27]),
    "channel_percentile": np.array([1.27, 0.0, 0.635]),
  }
  assert quantize.activation_scale(stats, method="max", granularity="tensor") == pytest.approx([0.02] * 3)
  # a channel never active in calibration takes the tensor's scale instead of 0 (no division by zero)
  assert quantize.activation_scale(stats, method="percentile", granularity="channel") == pytest.approx(
    [0.01, 0.01, 0.005]
  )
  with pytest.raises(ValueError):
    quantize.activation_scale(stats, method="entropy", granularity="tensor")


def test_int8_dense_matches_the_integer_arithmetic_by_hand():
  """One Dense layer, per-tensor activation scale: the quantized forward equals the hand computation."""
  dense = nn.Dense(3)
  x = np.array([[1.0, -0.5], [0.25, 2.0]], np.float32)
  params = jax.device_get(dense.init(jax.random.key(1), x)["params"])
  calibration = quantize.calibrate(dense, params, [x])
  weights = quantize.quantize(params, calibration, method="max", granularity="tensor")
  out = np.asarray(jax.jit(quantize.make_forward(dense))(weights, x))
  sx = 2.0 / 127
  wq, sw = quantize.quantize_kernel(np.asarray(params["kernel"]) * sx)
  xq = np.clip(np.round(x / sx), -127, 127).astype(np.int32)
  expected = (xq @ wq.astype(np.int32)).astype(np.float32) * sw + np.asarray(params["bias"])
  np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
  assert weights["float"] == {} and set(weights["int8"]) == {""}  # the root module itself is the Dense


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


def test_bandwidth_ladder_never_reports_a_smaller_working_set_slower():
  raw = [{"array_bytes": 1 << 20, "bytes_per_s": 50.0}, {"array_bytes": 8 << 20, "bytes_per_s": 90.0}]
  raw.append({"array_bytes": 64 << 20, "bytes_per_s": 10.0})
  ladder = peaks.monotone_ladder(raw)
  assert [e["bytes_per_s"] for e in ladder] == [90.0, 90.0, 10.0]  # the envelope, smallest set first
  assert [e["measured_bytes_per_s"] for e in ladder] == [50.0, 90.0, 10.0]  # the raw figures kept
  assert [e["envelope"] for e in ladder] == [True, False, False]
  assert peaks.bandwidth_for({"copy_ladder": ladder}, 1.5 * (1 << 20)) == 90.0


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
  fake["config_hash"] = "0" * 64
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
