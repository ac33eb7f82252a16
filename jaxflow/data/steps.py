"""How many training steps an epoch has: one rule for every dataset kind.

An epoch is `num_examples // batch_size` full batches of a fresh permutation (drawn from the `data`
stream per epoch), the remainder left for the next epoch's draw, as in the flax examples: every step has
the same static batch shape (one compiled program) and no example is seen twice in an epoch. Evaluation
is different: it pads its last batch and masks the padding, so every evaluation example counts once.
A dataset that is one whole graph (the karate club) has one step per epoch (`registry.DatasetKind`).
"""

from __future__ import annotations


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
  """Full batches of `batch_size` in `num_examples` (at least one: validation keeps batch <= examples)."""
  return max(1, num_examples // batch_size)
