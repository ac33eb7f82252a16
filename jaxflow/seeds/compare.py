"""`jaxflow seeds compare A B`: is A's mean really above B's? Claimed only with the seeds behind it.

Reads both studies' report.json (their `all` sweep when they ran `--study=sources`, else their one
sweep) and compares the per-seed final values of the monitored metric: the difference of means with a
95% Welch interval, Welch's t-test and the Mann-Whitney U test (jaxflow.seeds.stats.compare).
"""

from __future__ import annotations

import json
import os

from jaxflow.config import ConfigError
from jaxflow.seeds import stats


def _values(study_dir: str) -> tuple[str, str, list[float]]:
  path = os.path.join(study_dir, "report.json")
  try:
    with open(path) as f:
      report = json.load(f)
  except OSError:
    raise ConfigError(f"{path} not found: give two workdirs of `jaxflow seeds` runs") from None
  sweeps = {s["name"]: s for s in report["sweeps"]}
  sweep = sweeps.get("all") or report["sweeps"][0]
  values = [r["final"] for r in sweep["seeds"] if r["final"] is not None]
  if len(values) < 2:
    raise ConfigError(
      f"{study_dir}: sweep {sweep['name']!r} has {len(values)} finished seed(s); a comparison needs at least 2 per side"
    )
  return report["metric"], sweep["name"], values


def compare_studies(a_dir: str, b_dir: str) -> dict:
  metric_a, sweep_a, a = _values(a_dir)
  metric_b, sweep_b, b = _values(b_dir)
  if metric_a != metric_b:
    raise ConfigError(f"the studies monitor different metrics ({metric_a} vs {metric_b}); compare like with like")
  result = stats.compare(a, b)
  result.update({"a": a_dir, "b": b_dir, "metric": metric_a, "sweep_a": sweep_a, "sweep_b": sweep_b})
  if result["a_beats_b"]:
    verdict = f"A beats B: {metric_a} higher by {result['difference']:.4f}"
  elif result["b_beats_a"]:
    verdict = f"B beats A: {metric_a} higher by {-result['difference']:.4f}"
  else:
    verdict = "no difference shown: the interval contains 0 or a test does not reject at 5%"
  lo, hi = result["difference_ci95"]
  result["verdict"] = (
    f"{verdict} (mean A {result['mean_a']:.4f} over {result['n_a']} seeds, B {result['mean_b']:.4f} over "
    f"{result['n_b']}; "
    f"difference 95% CI [{lo:.4f}, {hi:.4f}], Welch p={result['welch_t_p']:.3g}, Mann-Whitney "
    f"p={result['mann_whitney_p']:.3g})"
  )
  return result
