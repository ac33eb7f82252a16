"""Transfer learning, step 2: digits 5-9 from 50 training examples, conv layers taken from the 0-4 run
and frozen, the dense layer fine-tuned, the head re-initialized.

  jaxflow train --config=configs/digits_cnn_finetune.py --config.init_from=runs/cnn_pretrain --workdir=runs/cnn_finetune

Expect: higher test accuracy on 5-9 than configs/digits_cnn_scratch.py on the same 50 examples
(the conv features learned on 0-4 transfer).
"""

from configs import digits_cnn

VARIANTS = ("test",)  # `FILE:test`: a few-step variant for smoke tests; jaxflow refuses any other variant


def get_config(variant: str = ""):
  config = digits_cnn.get_config(variant)
  config.data.classes = (5, 6, 7, 8, 9)
  config.data.train_examples = 50
  config.train.batch_size = 25
  config.train.epochs = 40 if variant != "test" else 2
  config.init_from = "runs/cnn_pretrain"
  config.freeze = ("conv",)
  config.reinit = ("head",)
  return config
