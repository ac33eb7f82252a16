"""A held-out evaluation split for a dataset that has only a training split (an own folder or CSV).

Without one, the default run stopped with "eval_split='test' is not a split ... allowed: train" and the user
had to learn the slice syntax. Now `data.holdout` (default 0.2) of that one split is held out, stratified by
class, whenever the dataset has a single split and `data.eval_split` names no split of it; `data.holdout=0`
restores the refusal. The choice is drawn from a fixed seed of its own (`HOLDOUT_SEED` of the `holdout`
purpose), not from a run's streams: every run, every seed of a study and every later export evaluates on the
same examples. Stratified: each class is permuted, its examples get the evenly spaced positions
(rank + 0.5) / class size, and the `round(fraction * n)` examples with the smallest positions (ties broken by
the permutation) are held out, so every class gives about `fraction` of its examples and the sizes are known
from the split's size alone.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from jaxflow import rng
from jaxflow.data.loading import FeatureSpec, Split

HOLDOUT_SEED = 0
PURPOSE = "holdout"


def applies(data_config, spec: FeatureSpec, stored: bool) -> bool:
  """Whether `data.eval_split` is to be held out of the dataset's only split."""
  d = data_config
  splits = set(spec.split_sizes)
  plain = not any(c in d.eval_split for c in "[+")  # a slice the user wrote is theirs, never replaced
  share = d.get("holdout", 0)  # a run from before data.holdout refused one-split datasets: it keeps doing so
  return bool(stored and share and plain and d.eval_split not in splits and splits == {d.train_split})


def sizes(n: int, fraction: float) -> tuple[int, int]:
  """(train, held out) example counts of a split of `n` examples."""
  held = min(n - 1, max(1, round(fraction * n)))
  return n - held, held


def held_out_mask(labels: np.ndarray, fraction: float) -> np.ndarray:
  """[n] bool: the examples held out (see the module docstring), deterministic for given labels."""
  n = labels.shape[0]
  _, held = sizes(n, fraction)
  order = np.random.default_rng([HOLDOUT_SEED, rng.stable_id(PURPOSE)]).permutation(n)
  position = np.empty(n, np.float64)
  for label in np.unique(labels):
    members = order[labels[order] == label]  # this class's examples, in permuted order
    position[members] = (np.arange(members.size) + 0.5) / members.size
  tiebreak = np.empty(n, np.int64)
  tiebreak[order] = np.arange(n)
  chosen = np.lexsort((tiebreak, position))[:held]
  mask = np.zeros(n, bool)
  mask[chosen] = True
  return mask


def split(whole: Split, fraction: float) -> tuple[Split, Split]:
  """(training part, held-out part) of `whole`, each in stored order."""
  mask = held_out_mask(whole.labels, fraction)

  def take(keep):
    return dataclasses.replace(
      whole,
      inputs=jax.tree.map(lambda a: a[keep], whole.inputs),
      labels=whole.labels[keep],
      metadata={k: v[keep] for k, v in whole.metadata.items()},
    )

  return take(~mask), take(mask)


def describe(data_config, n: int) -> dict:
  """What summary.json records and the one printed line says."""
  train, held = sizes(n, data_config.holdout)
  return {
    "split": data_config.train_split,
    "fraction": data_config.holdout,
    "train_examples": train,
    "held_out_examples": held,
    "stratified": True,
    "seed": f"fixed: seed {HOLDOUT_SEED} of the '{PURPOSE}' purpose (the same examples in every run and seed)",
  }
