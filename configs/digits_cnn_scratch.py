"""Transfer learning, the baseline: the fine-tuning run's 50 examples of digits 5-9, from scratch.

jaxflow train --config=configs/digits_cnn_scratch.py --workdir=runs/cnn_scratch
"""

from configs import digits_cnn_finetune

VARIANTS = ("test",)  # `FILE:test`: a few-step variant for smoke tests; jaxflow refuses any other variant


def get_config(variant: str = ""):
  config = digits_cnn_finetune.get_config(variant)
  config.init_from = None
  config.freeze = ()
  config.reinit = ()
  return config
