"""`jaxflow seeds compare A B`: is A's mean really above B's? Claimed only with the seeds behind it.

Reads both studies' report.json (their `all` sweep when they ran `--study=sources`, else their one
sweep, and says which it took) and compares the per-seed final values of the monitored metric: the
difference of means with a 95% Welch interval, Welch's t-test and the Mann-Whitney U test
(jaxflow.seeds.stats.compare). What the two studies' configs differ in (epochs, learning rate...) is
listed first, read from their seeds' config.json: a difference means little without knowing what changed.
The verdict names the two paths, and when no difference is claimed, which of the three conditions failed.
"""

from __future__ import annotations

import glob
import json
import os

from jaxflow.config import ConfigError, counted_differences
from jaxflow.seeds import stats

SEED_FIELDS = ("seed", "seeds")  # what a study varies on purpose: not a difference between the studies


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


def _first_config(study_dir: str, sweep: str) -> dict | None:
  paths = sorted(glob.glob(os.path.join(study_dir, sweep, "seed_*", "config.json")))
  if not paths:
    return None
  with open(paths[0]) as f:
    return json.load(f).get("config")


def config_differences(a_dir: str, sweep_a: str, b_dir: str, sweep_b: str) -> list[str] | None:
  """`field: A's -> B's` for every config field the two studies differ in (seeds and resume-neutral fields
  aside); None when a study's configs cannot be read."""
  a, b = _first_config(a_dir, sweep_a), _first_config(b_dir, sweep_b)
  if a is None or b is None:
    return None
  return counted_differences(a, b, ignore=SEED_FIELDS)


def _failed_conditions(result: dict) -> str:
  lo, hi = result["difference_ci95"]
  failed = []
  if lo <= 0 <= hi:
    failed.append(f"the 95% interval [{lo:.4f}, {hi:.4f}] contains 0")
  if result["welch_t_p"] >= 0.05:
    failed.append(f"Welch's t-test does not reject (p={result['welch_t_p']:.3g} >= 0.05)")
  if result["mann_whitney_p"] >= 0.05:
    failed.append(f"Mann-Whitney does not reject (p={result['mann_whitney_p']:.3g} >= 0.05)")
  return "; ".join(failed)


def compare_studies(a_dir: str, b_dir: str) -> dict:
  metric_a, sweep_a, a = _values(a_dir)
  metric_b, sweep_b, b = _values(b_dir)
  if metric_a != metric_b:
    raise ConfigError(f"the studies monitor different metrics ({metric_a} vs {metric_b}); compare like with like")
  result = stats.compare(a, b)
  result.update({"a": a_dir, "b": b_dir, "metric": metric_a, "sweep_a": sweep_a, "sweep_b": sweep_b})
  result["config_differences"] = config_differences(a_dir, sweep_a, b_dir, sweep_b)
  if result["a_beats_b"]:
    verdict = f"{a_dir} beats {b_dir}: {metric_a} higher by {result['difference']:.4f}"
  elif result["b_beats_a"]:
    verdict = f"{b_dir} beats {a_dir}: {metric_a} higher by {-result['difference']:.4f}"
  else:
    verdict = f"no difference shown between {a_dir} and {b_dir}: {_failed_conditions(result)}"
  lo, hi = result["difference_ci95"]
  result["verdict"] = (
    f"{verdict} (mean {result['mean_a']:.4f} over {result['n_a']} seeds of sweep {sweep_a!r} against "
    f"{result['mean_b']:.4f} over {result['n_b']} of sweep {sweep_b!r}; "
    f"difference 95% CI [{lo:.4f}, {hi:.4f}], Welch p={result['welch_t_p']:.3g}, Mann-Whitney "
    f"p={result['mann_whitney_p']:.3g})"
  )
  return result
