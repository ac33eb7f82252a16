"""jaxflow profile's measuring parts: the timer's honesty (it refuses work it has not synchronized and times
the work, not the dispatch), its statistics, HLO counting, op-by-op runs and roofline arithmetic; tiny shapes
and `timing.QUICK`."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxflow.profiler import (
  hlo,
  opbyop,
  roofline,
  timing,
)

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
