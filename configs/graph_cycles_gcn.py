"""Graph classification with a known structural rule: does a random graph of 6-16 nodes contain a cycle?
Generated from the `data` stream and served through tfds (jaxflow/data/graph_builders.py); batches are
padded to 3 budgets, so the step compiles at most 3 times. Node features: one-hot degree.

  jaxflow train --config=configs/graph_cycles_gcn.py --workdir=runs/graph_cycles

Expect: test accuracy ~0.99 (chance 0.5; a logistic regression on the degree histogram gets 0.70).
"""

from configs import base

VARIANTS = ("test",)  # `FILE:test`: a few-step variant for smoke tests; jaxflow refuses any other variant


def get_config(variant: str = ""):
  config = base.get_config()
  config.data.name = "graph_cycles"
  config.model.name = "gcn"
  config.model.gnn_head = "graph"
  config.model.widths = (64, 64, 64, 64)
  config.optim.name = "adam"
  config.optim.lr = 3e-3
  config.optim.schedule = "cosine"
  config.train.batch_size = 32
  config.train.epochs = 20 if variant != "test" else 2
  base.millisecond_epochs(config)
  if variant == "test":
    config.data.train_split = "train"
  return config
