"""MLP on the 8x8 digits that scikit-learn ships (1437 train / 360 test, prepared on first use).

  jaxflow train --config=configs/digits_mlp.py --workdir=runs/digits_mlp

Expect: test accuracy ~0.97-0.98 after 30 epochs, ~5 s on 2 CPU cores.
`get_config("test")` is a few-step variant for smoke tests.
"""

from configs import base

VARIANTS = ("test",)  # `FILE:test`: a few-step variant for smoke tests; jaxflow refuses any other variant


def get_config(variant: str = ""):
  config = base.get_config()
  config.model.name = "mlp"
  config.model.widths = (256, 256)
  config.model.dropout_rate = 0.1
  config.optim.name = "adam"
  config.optim.lr = 3e-3
  config.optim.schedule = "cosine"
  config.optim.warmup_steps = 20
  config.train.batch_size = 128
  config.train.epochs = 30
  base.millisecond_epochs(config)
  if variant == "test":
    config.train.epochs = 2
    config.train.log_every = 5
  return config
