"""A hybrid by composition: a conv stem (no pooling, no dense layers) whose 8x8x32 feature maps an LSTM
reads as 8 rows of 256 features, then one head. `model.stages` chains registry models; no new class.

  jaxflow train --config=configs/digits_conv_lstm.py --workdir=runs/digits_conv_lstm

Expect: test accuracy ~0.98. Parameters nest under `cnn`, `rnn` and `head`, so
`--config.freeze="('cnn',)"` (with init_from) addresses the whole stem.
"""

from configs import base

VARIANTS = ("test",)  # `FILE:test`: a few-step variant for smoke tests; jaxflow refuses any other variant


def get_config(variant: str = ""):
  config = base.get_config()
  config.model.name = "stack"
  config.model.stages = ("cnn", "rnn")
  config.model.conv_features = (32,)
  config.model.pool = False
  config.model.widths = ()  # the CNN stage stays a stem: it returns its feature maps
  config.model.rnn_cell = "lstm"
  config.model.rnn_hidden = (64,)
  config.model.dropout_rate = 0.1
  config.optim.name = "adam"
  config.optim.lr = 3e-3
  config.optim.schedule = "cosine"
  config.optim.warmup_steps = 20
  config.train.batch_size = 64
  config.train.epochs = 20
  base.millisecond_epochs(config)
  if variant == "test":
    config.train.epochs = 1
  return config
