"""The profiler's peaks (jaxflow/profiler/peaks.py): a peak is the work one program does over its *fastest*
repeat, the best over sizes. The timing is replaced by fixed repeats (0.5, 0.2, 0.3 s), so the figures are
checked against the work each program is seen to do, computed here: the matmul's product against numpy, the
copy's passes read back from its output."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxflow.profiler import peaks, timing

REPEATS = [0.5, 0.2, 0.3]  # fastest 0.2 s, median 0.3 s


@pytest.fixture
def ran(monkeypatch) -> list:
  """time_calls replaced: each timed program runs once on its first inputs, its output kept."""
  seen = []

  def fake_time_calls(fn, inputs, protocol, *, name="", warm=True):
    seen.append((inputs[0], np.asarray(fn(*inputs[0]))))
    return timing.Timing(list(REPEATS))

  monkeypatch.setattr(timing, "time_calls", fake_time_calls)
  return seen


@pytest.mark.parametrize("dtype", ["int8", "f32"])
def test_matmul_peak_is_2n3_over_the_fastest_repeat_of_the_largest_rate(ran, dtype):
  device = jax.devices()[0]
  result = peaks.matmul_peak(device, dtype, sizes=(32, 64), protocol=timing.QUICK)
  for (a, b), out in ran:  # each timed program is the n x n @ n x n product (2 n^3 FLOPs)
    exact = np.asarray(a, np.float64) @ np.asarray(b, np.float64)
    assert out.shape == exact.shape == (a.shape[0], a.shape[0])
    # int8 accumulates in int32: exact. f32 at the default precision: each entry a sum of n products of
    # |x| <~ 3 normals, rounding ~n * 2^-24 * 9 relative to the terms; 1e-3 absolute is far above that.
    np.testing.assert_allclose(out, exact, atol=0 if dtype == "int8" else 1e-3)
  assert result["by_size"] == {str(n): pytest.approx(2 * n**3 / 0.2, rel=1e-12) for n in (32, 64)}
  assert (result["n"], result["flops_per_s"]) == (64, pytest.approx(2 * 64**3 / 0.2, rel=1e-12))


def test_copy_bandwidth_is_the_bytes_its_passes_move_over_the_fastest_repeat(ran):
  nbytes = 16 << 20
  result = peaks.copy_bandwidth(jax.devices()[0], nbytes, protocol=timing.QUICK)
  ((x,), y) = ran[0]
  assert np.all(np.asarray(x) == 0.0)  # the first array: zeros
  # y = 0.999 y + 0.001 from 0, k times: 1 - 0.999^k. Each pass adds ~1e-3 at k ~ 30 against float32
  # rounding ~1e-9 per pass: the number of passes the program ran reads back exactly.
  passes = np.log(1.0 - np.asarray(y, np.float64)) / np.log(0.999)
  assert np.ptp(passes) < 0.01
  k = int(round(float(passes.mean())))
  assert abs(passes.mean() - k) < 0.01 and k == result["passes"]
  moved = 2 * nbytes * k  # each pass reads and writes the array
  assert moved >= peaks.MOVED_PER_MEASUREMENT
  assert result["array_bytes"] == nbytes
  assert result["bytes_per_s"] == pytest.approx(moved / 0.2, rel=1e-12)
  assert result["median_bytes_per_s"] == pytest.approx(moved / 0.3, rel=1e-12)


def test_bandwidth_ladder_never_reports_a_smaller_working_set_slower():
  raw = [{"array_bytes": 1 << 20, "bytes_per_s": 50.0}, {"array_bytes": 8 << 20, "bytes_per_s": 90.0}]
  raw.append({"array_bytes": 64 << 20, "bytes_per_s": 10.0})
  ladder = peaks.monotone_ladder(raw)
  assert [e["bytes_per_s"] for e in ladder] == [90.0, 90.0, 10.0]  # the envelope, smallest set first
  assert [e["measured_bytes_per_s"] for e in ladder] == [50.0, 90.0, 10.0]  # the raw figures kept
  assert [e["envelope"] for e in ladder] == [True, False, False]
  assert peaks.bandwidth_for({"copy_ladder": ladder}, 1.5 * (1 << 20)) == 90.0
