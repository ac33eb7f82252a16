"""`jaxflow seeds compare A B --until-decided`: train both arms in rounds until the answer is clear.

A and B are config files (the arms train into WORKDIR/a and WORKDIR/b) or workdirs of earlier single-sweep
`jaxflow seeds` studies (extended in place: their config and varied sources are read back from the study).
Each round asks the seeds runner for more seeds per arm; a study rerun trains only the seeds it does not
have yet, so a round costs its new seeds, vmapped when the mode allows, and a killed comparison resumes.
After each round jaxflow.seeds.sequential decides at the look's share of the error budget; the result says
when and why it stopped, the seeds spent against what a fixed-count power analysis asks for, and P(A > B).
"""

from __future__ import annotations

import os

import ml_collections
import numpy as np

from jaxflow.config import ConfigError, from_dict, load_config
from jaxflow.seeds import sequential
from jaxflow.seeds.study import run_seeds
from jaxflow.workdir import read_json

LABELS = ("a", "b")


def _arm(path: str, workdir: str | None, label: str) -> tuple[ml_collections.ConfigDict, str, str]:
  """(config, study workdir, vary) of one arm."""
  if path.split(":", 1)[0].endswith(".py"):  # a config file, or FILE.py:variant
    if not workdir:
      raise ConfigError("--workdir=DIR is needed when A and B are config files: the arms train into DIR/a and DIR/b")
    return load_config(path), os.path.join(workdir, label), "all"
  try:
    report = read_json(os.path.join(path, "report.json"))
  except (OSError, ValueError):
    raise ConfigError(
      f"{path}: neither a config file (.py) nor the workdir of a `jaxflow seeds` study (no readable report.json)"
    ) from None
  if report.get("study") == "sources" or len(report.get("sweeps", [])) != 1:
    raise ConfigError(f"{path}: a --study=sources study; --until-decided extends a single-sweep study (--vary=...)")
  sweep = report["sweeps"][0]
  try:
    config = from_dict(read_json(os.path.join(path, sweep["name"], "seed_000", "config.json"))["config"])
  except (OSError, ValueError, KeyError):
    raise ConfigError(f"{path}: its first seed has no readable config.json to extend the study from") from None
  return config, path, ",".join(sweep["vary"]) or "none"


def _check(min_effect, max_seeds, first, round_size) -> None:
  for name, value in (("max_seeds", max_seeds), ("first", first), ("round", round_size)):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
      raise ConfigError(f"--{name}={value!r} must be a positive integer")
  if first < 2 or max_seeds < first:
    raise ConfigError(f"--first={first} must be >= 2 (a variance) and --max_seeds={max_seeds} >= --first")
  if min_effect is not None and not 0 < min_effect < float("inf"):
    raise ConfigError(f"--min_effect={min_effect!r} must be a finite number > 0 (the equivalence margin, metric units)")


def _existing_seeds(study_dir: str) -> int:
  try:
    return len(read_json(os.path.join(study_dir, "report.json"))["sweeps"][0]["seeds"])
  except (OSError, ValueError, KeyError, IndexError):
    return 0


def _failed(report: dict) -> int:
  return sum(r["final"] is None for r in report["sweeps"][0]["seeds"])


def _finals(report: dict) -> list[float]:
  return [r["final"] for r in report["sweeps"][0]["seeds"] if r["final"] is not None]


def _oriented(decision: str, mode: str) -> str:
  """`decide` says which mean is higher; with a metric to minimize, the lower one is better."""
  swap = {"a_better": "b_better", "b_better": "a_better"}
  return swap.get(decision, decision) if mode == "min" else decision


def compare_until_decided(
  a: str,
  b: str,
  *,
  workdir: str | None = None,
  min_effect: float | None = None,
  max_seeds: int = 64,
  first: int = 4,
  round_size: int = 4,
  mode: str = "auto",
  alpha: float = 0.05,
  quiet: bool = True,
) -> dict:
  _check(min_effect, max_seeds, first, round_size)
  arms = [_arm(path, workdir, label) for path, label in zip((a, b), LABELS)]
  # A study that has more seeds than the first look is never cut down (run_seeds rewrites its report for n seeds).
  first = max(first, *(_existing_seeds(d) for _, d, _ in arms))
  max_seeds = max(max_seeds, first)
  metrics = {(c.train.monitor, c.train.monitor_mode) for c, _, _ in arms}
  if len(metrics) != 1:
    raise ConfigError(f"the arms monitor different metrics ({sorted(metrics)}); compare like with like")
  metric, direction = metrics.pop()
  looks = sequential.plan(first, round_size, max_seeds, alpha)
  history: list[dict] = []
  modes = [mode, mode]  # `auto` times the candidates once per arm; later rounds keep what it chose
  for n, level in zip(looks.looks, looks.alphas):
    reports = [run_seeds(c, d, seeds=n, vary=v, mode=m, quiet=quiet, plots=False) for (c, d, v), m in zip(arms, modes)]
    modes = [r["mode"]["mode"] if m == "auto" else m for r, m in zip(reports, modes)]
    finals = [_finals(r) for r in reports]
    failed = [_failed(r) for r in reports]
    if min(map(len, finals)) < 2:
      raise ConfigError(f"fewer than 2 seeds finished in an arm after {n} seeds: nothing to compare (diverged?)")
    decision = _oriented(sequential.decide(*finals, level, min_effect).item(), direction)
    history.append({"seeds": n, "level": level, "decision": decision, "ci": sequential.interval(*finals, level)})
    if not quiet:
      lo, hi = history[-1]["ci"]
      print(
        f"jaxflow seeds compare: {n} seeds per arm, difference {np.mean(finals[0]) - np.mean(finals[1]):+.4f} "
        f"[{lo:+.4f}, {hi:+.4f}] at level {level:.4f}: {decision}",
        flush=True,
      )
    if decision != "continue":
      break
  result = _result(arms, finals, history, looks, metric, direction, min_effect)
  if any(failed):  # left out of the test: said, since an arm that fails more often is compared on its survivors
    result["verdict"] += f"; seeds that failed and are left out: A {failed[0]}, B {failed[1]}"
  return {**result, "failed_seeds": failed}


def _result(arms, finals, history, looks, metric, direction, min_effect) -> dict:
  last = history[-1]
  decision = last["decision"] if last["decision"] != "continue" else "undecided"
  difference = float(np.mean(finals[0]) - np.mean(finals[1]))
  stds = [float(np.std(f, ddof=1)) for f in finals]
  effect = difference if decision in ("a_better", "b_better") else (min_effect or difference)
  fixed = sequential.fixed_seeds_needed(effect, *stds, alpha=looks.alpha)
  better = {"a_better": arms[0][1], "b_better": arms[1][1]}.get(decision)
  said = {
    "a_better": f"{better} is better",
    "b_better": f"{better} is better",
    "equivalent": f"equivalent within +-{min_effect}",
    "undecided": f"undecided after {looks.looks[-1]} seeds per arm (the maximum)",
  }[decision]
  superiority = sequential.prob_superiority(*finals)
  lo, hi = last["ci"]
  return {
    "a": arms[0][1],
    "b": arms[1][1],
    "metric": metric,
    "mode": direction,
    "decision": decision,
    "seeds_per_arm": last["seeds"],
    "looks": history,
    "plan": {"looks": list(looks.looks), "alphas": list(looks.alphas), "alpha": looks.alpha},
    "difference": difference,
    "std": stds,
    "fixed_design_seeds_per_arm": fixed,
    "p_a_beats_b": superiority,
    "verdict": (
      f"{said}: {metric} difference (A - B) {difference:+.4f}, interval [{lo:+.4f}, {hi:+.4f}] at this look's level "
      f"{last['level']:.4f} (sequential, total error rate {looks.alpha}); {last['seeds']} seeds per arm spent, a fixed "
      f"design powered at 80% for {effect:+.4f} would need {fixed if fixed is not None else 'an unbounded number of'}; "
      f"P(A > B) {superiority['p']:.2f} [{superiority['ci95'][0]:.2f}, {superiority['ci95'][1]:.2f}]"
    ),
  }
