"""Generated datasets with a known answer, drawn from the run's `data` PRNG stream.

Unlike the tfds datasets, these are produced in memory at the start of a run from an integer seed that
the loop derives from its `data` stream (so `config.seeds.data` pins them, and a study that varies the
data stream varies the dataset). They are small and cheap to make, so nothing is prepared on disk.

`adding`: the adding problem (Hochreiter & Schmidhuber 1997). Each example is a sequence of
(value, marker) pairs of random length in [min_len, max_len], values uniform in [0, 1), exactly two
markers set; the target is the sum of the two marked values. Predicting the mean (1.0) gives MSE 1/6;
a model that has learned the task gets close to 0. Variable lengths make it a masking test: inputs are
`{"sequence": [n, max_len, 2], "lengths": [n]}`, steps past `lengths` are zero padding.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxflow.data.loading import FeatureSpec, Split


@dataclasses.dataclass(frozen=True)
class AddingProblem:
  train_size: int = 4000
  test_size: int = 1000
  min_len: int = 10
  max_len: int = 30

  def spec(self, name: str) -> FeatureSpec:
    return FeatureSpec(
      name=name,
      input_feature="sequence",
      label_feature="target",
      input_shape=(self.max_len, 2),
      input_dtype="float32",
      num_classes=None,
      split_sizes={"train": self.train_size, "test": self.test_size},
      feature_names=("sequence", "lengths", "target"),
    )

  def input_structure(self):
    """The model's input with batch 1, as shapes (for initialization and shape checks)."""
    return {
      "sequence": jax.ShapeDtypeStruct((1, self.max_len, 2), jnp.float32),
      "lengths": jax.ShapeDtypeStruct((1,), jnp.int32),
    }

  def generate(self, seed: int) -> dict[str, Split]:
    """{'train': Split, 'test': Split}; inputs are dicts (sequence, lengths), labels float32 targets."""
    rng = np.random.default_rng(seed)
    splits = {}
    for split, n in (("train", self.train_size), ("test", self.test_size)):
      lengths = rng.integers(self.min_len, self.max_len + 1, size=n)
      values = rng.random((n, self.max_len), dtype=np.float32)
      steps = np.arange(self.max_len)[None, :]
      values = np.where(steps < lengths[:, None], values, 0.0).astype(np.float32)
      markers = np.zeros((n, self.max_len), np.float32)
      for i, length in enumerate(lengths):  # two distinct marked steps inside the valid part
        markers[i, rng.choice(length, size=2, replace=False)] = 1.0
      targets = (values * markers).sum(axis=1).astype(np.float32)
      sequence = np.stack([values, markers], axis=-1)
      splits[split] = Split(inputs={"sequence": sequence, "lengths": lengths.astype(np.int32)}, labels=targets)
    return splits


GENERATED = {"adding": AddingProblem()}
