"""The adding problem (jaxflow/data/synthetic.py): an LSTM reads variable-length sequences of
(value, marker) pairs and regresses the sum of the two marked values. Generated from the `data` stream.

  jaxflow train --config=configs/adding_rnn.py --workdir=runs/adding_rnn

Known answer: predicting the mean gives test MSE 1/6 ~ 0.167 (MAE ~0.33); a model that solved the task
gets MSE near 0. Expect MSE < 0.01 after 40 epochs.
"""

from configs import base

VARIANTS = ("test",)  # `FILE:test`: a few-step variant for smoke tests; jaxflow refuses any other variant


def get_config(variant: str = ""):
  config = base.get_config()
  config.data.name = "adding"
  config.problem.kind = "regression"
  config.model.name = "rnn"
  config.model.rnn_cell = "lstm"
  config.model.rnn_hidden = (64,)
  config.model.rnn_head = "many_to_one"
  config.optim.name = "adam"
  config.optim.lr = 3e-3
  config.optim.schedule = "cosine"
  config.optim.warmup_steps = 50
  config.optim.clip_norm = 1.0
  config.train.batch_size = 100
  config.train.epochs = 40
  config.train.monitor = "eval/loss"
  config.train.monitor_mode = "min"
  base.millisecond_epochs(config)
  if variant == "test":
    config.train.epochs = 2
    config.data.train_examples = 400
  return config
