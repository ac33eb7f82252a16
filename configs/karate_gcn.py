"""Semi-supervised node classification on Zachary's karate club (networkx ships it): a two-layer GCN
sees the labels of the two club leaders only and predicts the club of the other 32 members.

  jaxflow train --config=configs/karate_gcn.py --workdir=runs/karate_gcn

Expect: ~0.97 accuracy on the 32 unlabelled nodes (median over seeds; chance 0.5).
"""

from configs import base

VARIANTS = ("test",)  # `FILE:test`: a few-step variant for smoke tests; jaxflow refuses any other variant


def get_config(variant: str = ""):
  config = base.get_config()
  config.data.name = "karate"
  config.model.name = "gcn"
  config.model.gnn_head = "node"
  config.model.widths = (16, 16)
  config.model.dropout_rate = 0.5
  config.optim.name = "adam"
  config.optim.lr = 0.01
  config.optim.weight_decay = 5e-4
  config.train.batch_size = 1  # one full-graph batch per step; the loss sees the labelled nodes
  config.train.epochs = 200 if variant != "test" else 5
  config.train.log_every = 20
  base.millisecond_epochs(config)
  config.train.histogram_every = 50
  return config
