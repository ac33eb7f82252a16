"""Transfer learning, step 1: the digits CNN pretrained on digits 0-4 only.

  jaxflow train --config=configs/digits_cnn_pretrain.py --workdir=runs/cnn_pretrain

Then configs/digits_cnn_finetune.py reuses its conv layers for digits 5-9, and
configs/digits_cnn_scratch.py trains the same small 5-9 subset from scratch for comparison
(experiments/transfer/run.py runs all three and writes the comparison).
"""

from configs import digits_cnn

VARIANTS = ("test",)  # `FILE:test`: a few-step variant for smoke tests; jaxflow refuses any other variant


def get_config(variant: str = ""):
  config = digits_cnn.get_config(variant)
  config.data.classes = (0, 1, 2, 3, 4)
  return config
