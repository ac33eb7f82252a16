"""The digits MLP's real space: `jaxflow.tune` studies with random search and BO at equal trials, and each method's
pick retrained through `jaxflow.seeds`.

Why retrain: a study's best trial is the maximum of noisy accuracies (one training seed each, picked on the test
split), so its value is optimistic; the pick retrained over the study's seeds says what the chosen settings give.
Why the same study seeds for both methods: study seed i of BO and of random search are paired by index, like the
seeds of two arms (the draws themselves differ: that is what is compared).
"""

from __future__ import annotations

import os

import numpy as np

import jaxflow
from experiments import harness_extras
from experiments.common import study

CONFIG = "configs/digits_mlp.py"
SPACE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "space.py")
SPACE_SHOWN = "experiments/tuning/space.py"
# A one-hidden-layer MLP of 64 units for 5 epochs (55 Adam steps): every trial ~1/6 of the config's own training.
# Each trial costs ~6-8 CPU-s on 2 cores (training, evaluation, checkpoints, the trial's records): the study's budget.
# A trial's lr, weight decay and dropout are constants of its compiled training program (measured: another lr
# recompiles, ~2.4 CPU-s), so each trial of a batch=1 study compiles its own.
BASE = ("model.widths=(64,)", "train.epochs=5")
QUICK_BASE = (*harness_extras.QUICK_MLP, f"data.train_examples={harness_extras.QUICK_TRAIN}")
METHODS = ("random", "bo")


def base_overrides(quick: bool) -> tuple[str, ...]:
  return QUICK_BASE if quick else BASE


def _override_text(field: str, value) -> str:
  """A config override as `jaxflow train --config.X=` takes it (tuples for widths)."""
  if isinstance(value, (list, tuple)):
    return f"{field}=({','.join(str(v) for v in value)},)"
  return f"{field}={value!r}"


def run_studies(
  session: study.Session, *, quick: bool, studies: int, trials: int, init_trials: int, batch: int = 1
) -> dict:
  """`studies` tune studies per method (study seed 0..studies-1) of `trials` trials each, `batch` proposals per
  round. Returns per method a list of {"seed", "curve" (best final accuracy after n trials), "best" (value,
  overrides), "seconds"}."""
  arm = study.Arm("tune base", CONFIG, base_overrides(quick))
  config = session.config(arm)
  out = {}
  for method in METHODS:
    rows = []
    for seed in range(studies):
      workdir = os.path.join(session.root, f"tune_{method}_{seed}")
      kw = {"init_trials": init_trials} if method == "bo" else {}
      report = jaxflow.tune(config, workdir, space=SPACE, method=method, trials=trials, seed=seed, batch=batch, **kw)
      values = [t["value"] if t["status"] == "completed" else np.nan for t in report["trials"]]
      curve = np.fmax.accumulate(np.asarray(values, np.float64)).tolist()
      best = report["best"]
      rows.append(
        {
          "seed": seed,
          "values": values,
          "curve": curve,
          "best_value": best["value"],
          "best_params": best["params"],
          "best_overrides": [_override_text(k, v) for k, v in best["overrides"].items()],
          "seconds": round(report["wall_seconds"], 1),
        }
      )
      print(f"[tuning] {method} study {seed}: best {best['value']:.4f} in {report['wall_seconds']:.0f} s", flush=True)
    out[method] = rows
  return out


def overall_pick(rows: list[dict]) -> dict:
  """The method's best trial over all its studies (the first of equal values)."""
  return max(rows, key=lambda r: r["best_value"])


def retrain(session: study.Session, studies: dict, quick: bool) -> dict[str, study.ArmResult]:
  """Each method's overall pick retrained over the session's seeds through `jaxflow.seeds` (vmapped: the picks
  differ only in run-time values). Not in a quick run: its tune studies are already its most expensive part."""
  if quick:
    return {}
  arms = {f"{m} pick": (*base_overrides(quick), *overall_pick(studies[m])["best_overrides"]) for m in METHODS}
  return {name: session.run(study.Arm(name, CONFIG, o, mode="vmap")) for name, o in arms.items()}
