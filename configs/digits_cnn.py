"""Small CNN on the 8x8 digits: two 3x3 conv layers (32, 64 channels) with max-pool, one dense layer.

  jaxflow train --config=configs/digits_cnn.py --workdir=runs/digits_cnn

Expect: test accuracy ~0.98-0.99 after 20 epochs, ~10 s on 2 CPU cores.
`get_config("test")` is a few-step variant for smoke tests.
"""

from configs import base

VARIANTS = ("test",)  # `FILE:test`: a few-step variant for smoke tests; jaxflow refuses any other variant


def get_config(variant: str = ""):
  config = base.get_config()
  config.model.name = "cnn"
  config.model.conv_features = (32, 64)
  config.model.widths = (128,)
  config.model.dropout_rate = 0.1
  config.optim.name = "adam"
  config.optim.lr = 3e-3
  config.optim.schedule = "cosine"
  config.optim.warmup_steps = 20
  config.train.batch_size = 64
  config.train.epochs = 20
  base.millisecond_epochs(config)
  if variant == "test":
    config.train.epochs = 2
    config.train.log_every = 5
  return config
