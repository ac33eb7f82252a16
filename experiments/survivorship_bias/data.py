"""The study's planes: a generated population of sorties, what reaches the analyst, and one NPZ for every arm.

Why generated: the question is about a selection mechanism, so the truth must be known. Each plane flies one
sortie through fire of a random intensity (`heat` ~ Gamma(4, 1/4), mean 1: a plane in heavy flak is hit
everywhere); each section takes Poisson(AREA[s] * heat) hits, AREA being its exposed area in mean hits per
sortie. The plane is lost with probability sigmoid(BASE_LOGIT + sum_s LETHALITY[s] * hits[s]): engine hits are
the deadliest per hit, fuselage hits nearly harmless, though the fuselage takes the most hits (largest area).

What reaches the analyst (the `recorded` filter): every returning plane is in the hangar and its holes are
counted; a lost plane is recorded only when it came down over friendly ground, where its wreck is inspected:
probability FRIENDLY_LOST * exp(-ENGINE_DROP * engine hits), since a plane whose engine is shot out goes down
at once, over enemy ground. So the filter depends on the outcome (returned: always kept) and, for lost planes,
on where they were hit. Exactly (Bayes): logit P(lost | hits, recorded) = logit P(lost | hits) + log
FRIENDLY_LOST - ENGINE_DROP * engine hits, so a perfect model of the recorded data learns an engine effect of
LETHALITY[engine] - ENGINE_DROP = -1.2 per hit where the truth is +1.3: the conclusion inverts.

The control (`outcome_only` filter) keeps the same returned planes and as many lost planes, drawn at random among
all lost planes: selection on the outcome alone. It changes the base rate but, by the same identity with a
constant selection odds, not the effect of any hit (the case-control property of the log odds ratio).

One NPZ holds every seed's data as named splits (`population_<i>`, `recorded_<i>`, `outcome_only_<i>`,
`test_<i>`), so jaxflow prepares one dataset for the whole study; seed i's planes come from
np.random.default_rng([DATA_SEED, i]), so every seed is a fresh draw of the war and the intervals cover the
sampling of planes as well as training. `test_<i>` is an unfiltered held-out sample of seed i's sorties.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

SECTIONS = ("engine", "cockpit", "fuel", "tail", "wings", "fuselage")
AREA = np.array([0.5, 0.3, 0.4, 0.8, 1.8, 2.2])  # mean hits per sortie at average fire
LETHALITY = np.array([1.3, 1.0, 0.8, 0.3, 0.1, 0.05])  # log odds of loss per hit: the truth
BASE_LOGIT = -2.6  # a plane without hits is lost 7% of the time (mechanical failure, fighters' crew hits)
FRIENDLY_LOST = 0.4  # a lost plane without engine hits comes down over friendly ground (and is recorded)
ENGINE_DROP = 2.5  # ... each engine hit multiplies that chance by exp(-2.5)
HEAT_SHAPE = 4.0
DATA_SEED = 20260  # the generator's fixed seed; seed i draws from default_rng([DATA_SEED, i])
LABEL = "lost"  # 1: the plane did not return
FILTERS = ("population", "recorded", "outcome_only")
TEST = "test"
BUCKETS = ("0", "1", "2+")  # hits in a section as the audit's attributes and the evaluation groups hold them: 0, 1, 2


@dataclasses.dataclass(frozen=True)
class Sizes:
  """Planes per seed: `train` rows in each arm's training split, `test` in the unfiltered held-out sample,
  drawn from a `pool` of further sorties that the filters read (large enough for `train` recorded rows)."""

  train: int
  test: int
  pool: int


FULL = Sizes(train=8_000, test=3_000, pool=12_000)
QUICK = Sizes(train=180, test=500, pool=400)


def recorded_engine_effect() -> float:
  """The engine effect a perfect model of the recorded data learns (module docstring): log odds per hit."""
  return float(LETHALITY[0] - ENGINE_DROP)


def sorties(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(hits int64 [n, sections], lost int64 [n], friendly bool [n]: a lost plane's wreck would be recorded)."""
  heat = rng.gamma(HEAT_SHAPE, 1.0 / HEAT_SHAPE, size=(n, 1))
  hits = rng.poisson(AREA * heat)
  p_lost = 1.0 / (1.0 + np.exp(-(BASE_LOGIT + hits @ LETHALITY)))
  lost = (rng.random(n) < p_lost).astype(np.int64)
  friendly = rng.random(n) < FRIENDLY_LOST * np.exp(-ENGINE_DROP * hits[:, 0])
  return hits, lost, friendly


def _filtered(rng: np.random.Generator, lost: np.ndarray, friendly: np.ndarray, size: int) -> dict[str, np.ndarray]:
  """Row indices into the pool of each arm's training split, `size` rows each.

  recorded: the first `size` pool planes that reach the analyst (returned, or lost over friendly ground);
  outcome_only: the same returned planes and as many lost ones, drawn at random among all lost planes;
  population: the first `size` pool planes, unfiltered."""
  reached = np.flatnonzero((lost == 0) | friendly)
  if reached.size < size:
    raise ValueError(f"the pool leaves {reached.size} recorded planes for a training split of {size}")
  recorded = reached[:size]
  returned = recorded[lost[recorded] == 0]
  n_lost = size - returned.size
  outcome_only = np.concatenate([returned, rng.choice(np.flatnonzero(lost == 1), n_lost, replace=False)])
  # One fixed shuffle: a prefix of the split (`data.train_examples`, the quick run) holds the same mix as the whole.
  return {
    "population": np.arange(size),
    "recorded": rng.permutation(recorded),
    "outcome_only": rng.permutation(outcome_only),
  }


def bucket(hits: np.ndarray) -> np.ndarray:
  """Hit counts [n] as 0, 1, 2 (2: two or more). Numbers, not strings: jaxflow converts a text feature of an NPZ
  several times slower, and the audit reads a numeric attribute with three values as categories all the same."""
  return np.minimum(hits, len(BUCKETS) - 1).astype(np.int64)


def draw(seed: int, sizes: Sizes) -> dict:
  """Seed `seed`'s war: the unfiltered test sample, the pool, and each arm's training rows (pool indices)."""
  rng = np.random.default_rng([DATA_SEED, seed])
  hits, lost, friendly = sorties(rng, sizes.test + sizes.pool)
  test = slice(0, sizes.test)
  pool = slice(sizes.test, None)
  rows = _filtered(rng, lost[pool], friendly[pool], sizes.train)
  return {
    "test": (hits[test], lost[test]),
    "pool": (hits[pool], lost[pool]),
    "train": {name: (hits[pool][r], lost[pool][r]) for name, r in rows.items()},
  }


def counts(war: dict) -> dict:
  """What each split of one seed's war holds: planes, loss rate, mean hits per section."""

  def describe(hits: np.ndarray, lost: np.ndarray) -> dict:
    return {"planes": int(lost.size), "loss_rate": float(lost.mean()), "mean_hits": hits.mean(axis=0).tolist()}

  out = {name: describe(*split) for name, split in war["train"].items()}
  return {**out, TEST: describe(*war["test"])}


def hangar(war: dict) -> dict:
  """Wald's table from the pool: mean hits per section on the planes that returned and on all planes."""
  hits, lost = war["pool"]
  return {"returned": hits[lost == 0].mean(axis=0).tolist(), "all": hits.mean(axis=0).tolist()}


def split_name(kind: str, seed: int) -> str:
  return f"{kind}_{seed}"


def build(path: str, seeds: int, sizes: Sizes) -> list[dict]:
  """Writes the study's NPZ (x float32 [n, 6] hits, `lost`, `split`, hits_<section> buckets) with every seed's
  splits; returns each seed's war (the arrays, for the probes and Wald's table)."""
  wars = [draw(i, sizes) for i in range(seeds)]
  xs, ys, splits = [], [], []
  for i, war in enumerate(wars):
    for kind in FILTERS:
      hits, lost = war["train"][kind]
      xs, ys, splits = xs + [hits], ys + [lost], splits + [split_name(kind, i)] * lost.size
    xs, ys, splits = xs + [war["test"][0]], ys + [war["test"][1]], splits + [split_name(TEST, i)] * war["test"][1].size
  x = np.concatenate(xs)
  metadata = {f"hits_{s}": bucket(x[:, k]) for k, s in enumerate(SECTIONS)}
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  np.savez(path, x=x.astype(np.float32), **{LABEL: np.concatenate(ys)}, split=np.array(splits), **metadata)
  return wars
