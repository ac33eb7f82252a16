"""The roofline: where a program's arithmetic intensity puts it against a device's measured peaks.

For a program doing F FLOPs while moving B bytes (XLA's cost model) in t seconds (measured), on a
device with peak compute P FLOP/s and bandwidth W bytes/s (measured by `peaks`):

  intensity I = F / B                   FLOPs per byte
  ridge       = P / W                   the intensity where the two roofs meet
  attainable  = min(P, W * I)           the best FLOP/s a program of that intensity can reach
  achieved    = F / t
  efficiency  = achieved / attainable   1.0 is on the roof
  bound       = 'memory' if I < ridge else 'compute' (what would limit it at full efficiency)

A program far below its roof (efficiency < `OVERHEAD_EFFICIENCY`) is limited by neither: by launch,
dispatch and synchronization overhead, which is what small batches on small models measure. A
program *above* its roof (efficiency > 1) is reported as such (`above_roof`), not clipped: the roof
was wrong for it (XLA's byte count includes re-reads served from cache, or the working set sat in a
faster level than the one measured for its size).
"""

from __future__ import annotations

OVERHEAD_EFFICIENCY = 0.05


def roofline(
  *,
  flops: float | None,
  bytes_accessed: float | None,
  seconds: float | None,
  peak_flops: float | None,
  bandwidth: float | None,
) -> dict:
  """The roofline placement of one measured program (module docstring); None where an input is missing."""
  if not flops or not bytes_accessed or not peak_flops or not bandwidth:
    return {
      "intensity": flops / bytes_accessed if flops and bytes_accessed else None,
      "ridge": peak_flops / bandwidth if peak_flops and bandwidth else None,
      "attainable_flops_per_s": None,
      "achieved_flops_per_s": flops / seconds if flops and seconds else None,
      "efficiency": None,
      "bound": None,
      "limited_by": None,
      "above_roof": None,
    }
  intensity = flops / bytes_accessed
  ridge = peak_flops / bandwidth
  attainable = min(peak_flops, bandwidth * intensity)
  achieved = flops / seconds if seconds else None
  efficiency = achieved / attainable if achieved is not None else None
  bound = "memory" if intensity < ridge else "compute"
  limited_by = bound if efficiency is None or efficiency >= OVERHEAD_EFFICIENCY else "overhead"
  above = efficiency is not None and efficiency > 1.0
  return {
    "intensity": intensity,
    "ridge": ridge,
    "attainable_flops_per_s": attainable,
    "achieved_flops_per_s": achieved,
    "efficiency": efficiency,
    "bound": bound,
    "limited_by": f"{bound} (above the measured roof)" if above else limited_by,
    "above_roof": above,
  }
