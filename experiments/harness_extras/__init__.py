"""What the ported studies (class_imbalance, label_noise, augmentation, transfer) share beyond experiments/common.

Written here rather than in experiments/common (another engineer's harness) so that the harness stays as its
owner wrote it; each piece is one a later version of experiments/common could take over as it is:

- the quick overrides: ONE tiny set for every quick run of these studies (a 16-unit MLP or an 8-channel CNN,
  one epoch, batches of 50 over a training set of 150-199 examples: three steps), so that the programs the
  studies compile repeat and the session's compilation cache serves the later ones;
- `per_seed_arm`: an arm whose config differs per seed (label_noise: a training split built from seed i's noise
  draw), each seed trained through `jaxflow.seeds(..., seeds=1)` with `seed=i`, so seed i pins every stream to i
  exactly as seed index i of a plain arm does: still paired (each call costs a few seconds of its own: use sparingly);
- `ranking`: arms by mean, best first, each with the arms it is resolved better than (paired, by the tie rule).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable

import jaxflow
from experiments.common import stats, study

# Every quick run of these studies: the same tiny model and step count, so the compiled programs repeat.
# The shapes of the test suite's own tiny models (tests/conftest.py's DEPLOY_CNN, tests/training's widths=(16,)
# MLPs): in the suite their init programs (the costliest compile, 3-9 s for the CNN on 2 loaded cores) are
# compiled once for all of them, through the session's shared compilation cache.
QUICK_MLP_MODEL = ("model.widths=(16,)",)
QUICK_CNN_MODEL = ("model.conv_features=(8,)", "model.widths=(16,)")
QUICK_BATCH, QUICK_STEPS = 50, 3
QUICK_MLP = (*QUICK_MLP_MODEL, "train.epochs=1", f"train.batch_size={QUICK_BATCH}")
QUICK_CNN = (*QUICK_CNN_MODEL, "train.epochs=1", f"train.batch_size={QUICK_BATCH}")
QUICK_TRAIN = 180  # a quick training set holds 150-199 examples: three steps of 50 per epoch


def final_best_and_train(summary: dict, workdir: str) -> dict:
  """A seed's final and best test accuracy and its final training accuracy (how far it fits its images)."""
  del workdir
  return {
    "accuracy": summary["final"]["eval"]["accuracy"],
    "best_accuracy": summary["best"]["value"],
    "train_accuracy": summary["final"]["train"].get("accuracy"),
  }


def epochs_override(n: int, steps: int, batch: int) -> str:
  """'train.epochs=E': the epochs that give about `steps` optimizer steps on n examples in batches of `batch`
  (the last partial batch is dropped), so a training set of another size keeps the config's step budget."""
  return f"train.epochs={max(1, -(-steps // (n // batch)))}"


def steps_overrides(n: int, steps: int, batch: int) -> tuple[str, str]:
  """Batch min(batch, n // 2) (at least two steps an epoch) and `epochs_override` for it, so a small set is not
  also under-trained."""
  b = max(1, min(batch, n // 2))
  return (f"train.batch_size={b}", epochs_override(n, steps, b))


def per_seed_arm(
  session: study.Session,
  arm: study.Arm,
  overrides_of_seed: Callable[[int], tuple[str, ...]],
  extract: Callable[[dict, str], dict] = study.final_eval,
) -> study.ArmResult:
  """Seed i trains `arm` plus `overrides_of_seed(i)` and `seed=i` through `jaxflow.seeds(seeds=1)`: the run
  jaxflow.seeds' seed index i of a plain arm would be, with the config that seed needs."""
  per_seed, workdirs, seconds, resolution = [], [], 0.0, None
  slug = "".join(c if c.isalnum() else "_" for c in arm.name)
  for i in range(session.seeds):
    one = dataclasses.replace(arm, overrides=(*arm.overrides, *overrides_of_seed(i), f"seed={i}"))
    root = os.path.join(session.root, f"{slug}_seed{i}")
    report = jaxflow.seeds(session.config(one), root, seeds=1, vary=arm.vary, mode=arm.mode, plots=False)
    row = report["sweeps"][0]["seeds"][0]
    seconds += report["sweeps"][0]["seconds"]
    resolution = resolution or (report.get("resolution") or {}).get("value")
    workdirs.append(row["workdir"])
    if row["status"] != "completed":
      per_seed.append(None)
      continue
    with open(os.path.join(row["workdir"], "summary.json")) as f:
      per_seed.append(extract(json.load(f), row["workdir"]))
  print(f"[{session.args.name}] {arm.name}: {session.seeds} seeds, one config each, in {seconds:.1f} s", flush=True)
  return study.ArmResult(arm, per_seed, resolution, arm.mode, round(seconds, 1), workdirs)


def rank(arms: dict[str, list], resolution: float | None, *, higher_is_better: bool = True) -> list[list]:
  """[[arm, [arms it is resolved better than]], ...], best mean first. Why not a chain 'a > b ~ c': ties are not
  transitive (b may tie with a and with c while a beats c), and a chain drawn through them says more than the
  seeds do."""
  means = {k: stats.mean_ci(v)["mean"] for k, v in arms.items()}
  order = sorted((k for k in arms if means[k] is not None), key=lambda k: means[k], reverse=higher_is_better)
  return [[a, [b for b in order if b != a and beats(arms[a], arms[b], resolution, higher_is_better)]] for a in order]


def ranking_text(ranked: list[list]) -> str:
  """'a (> c, d), b (> d), c, d'."""
  return ", ".join(a + (f" (> {', '.join(beaten)})" if beaten else "") for a, beaten in ranked) or "-"


def beats(a: list, b: list, resolution: float | None, higher_is_better: bool = True) -> bool:
  """a is resolved better than b: their paired difference is not a tie and has the better sign."""
  d = stats.paired(a, b)
  return not stats.is_tie(d, resolution) and (d["mean"] > 0) == higher_is_better


def overrides_cell(overrides, hidden: tuple[str, ...] = ()) -> str:
  """The overrides that make an arm what it is, as code, for a setup line or a table cell."""
  shown = [o for o in overrides if o not in hidden]
  return " ".join(f"`{o}`" for o in shown) or "-"
