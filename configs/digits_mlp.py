"""MLP on the 8x8 digits that scikit-learn ships (1437 train / 360 test, prepared on first use).

  jaxflow train --config=configs/digits_mlp.py --workdir=runs/digits_mlp

Expect: test accuracy ~0.97-0.98 after 30 epochs, ~5 s on 2 CPU cores.
`get_config("test")` is a few-step variant for smoke tests.
"""

from configs import base


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
  # Epochs take 15-100 ms here and an orbax save ~90 ms of CPU: checkpoint by time (and at the end),
  # histograms every 10 epochs. A long run of a bigger model would use checkpoint.every_epochs instead.
  config.checkpoint.every_epochs = 0
  config.checkpoint.every_seconds = 60.0
  config.train.histogram_every = 10
  if variant == "test":
    config.train.epochs = 2
    config.train.log_every = 5
  return config
