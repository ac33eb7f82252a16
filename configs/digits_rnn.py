"""LSTM on the 8x8 digits read as a sequence: 8 rows of 8 pixels, many-to-one head on the final state.

  jaxflow train --config=configs/digits_rnn.py --workdir=runs/digits_rnn

Expect: test accuracy ~0.97-0.98 after 30 epochs (0.972 / 0.978 / 0.978 for seeds 0 / 1 / 2), 12-17 s on
2 CPU cores, of which 8-10 s is XLA compilation (init, the scanned epoch, eval) and ~3 s training.
`--config.model.rnn_cell=gru|simple`, `--config.model.rnn_bidirectional=True` and
`--config.model.rnn_hidden=(64,64)` (stacked) train with the same command.
`get_config("test")` is a few-step variant for smoke tests.
"""

from configs import base

VARIANTS = ("test",)  # `FILE:test`: a few-step variant for smoke tests; jaxflow refuses any other variant


def get_config(variant: str = ""):
  config = base.get_config()
  config.model.name = "rnn"
  config.model.rnn_cell = "lstm"
  config.model.rnn_hidden = (128,)
  config.model.rnn_bidirectional = False
  config.model.rnn_head = "many_to_one"
  config.model.activation = "tanh"  # the simple cell's nonlinearity, should rnn_cell be switched to it
  config.model.dropout_rate = 0.1
  config.optim.name = "adam"
  config.optim.lr = 3e-3
  config.optim.schedule = "cosine"
  config.optim.warmup_steps = 20
  config.train.batch_size = 64
  config.train.epochs = 30
  base.millisecond_epochs(config)
  if variant == "test":
    config.train.epochs = 2
    config.train.log_every = 5
  return config
