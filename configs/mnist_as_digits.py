"""A tfds dataset adapted to a problem it was not made for: mnist read as the 8x8 digits problem.

  tfds build mnist --data_dir=DIR --file_format=array_record     # once, on a machine with network
  jaxflow train --config=configs/mnist_as_digits.py --config.data.data_dir=DIR --workdir=runs/mnist8

The problem is the digits one: 8x8x1 images, 10 classes. mnist's 28x28x1 images are resized to 8x8
(`data.adapt.resize`, antialiased), so the digits CNN runs on them unchanged. The variant
`get_config("parity")` relabels the ten digits into two classes, even and odd (`data.adapt.relabel`,
the same mechanism merges any classes; -1 drops one). jaxflow never downloads: mnist must be prepared
in the data dir first (tests run it under `tfds.testing.mock_data`).
"""

from configs import base, digits_cnn

VARIANTS = ("parity",)  # `FILE:parity`: even vs odd (see above); jaxflow refuses any other variant


def get_config(variant: str = ""):
  config = digits_cnn.get_config()
  config.data.name = "mnist"
  config.data.input_feature = "image"
  config.data.label_feature = "label"
  config.data.adapt.resize = (8, 8)
  config.problem.input_shape = (8, 8, 1)  # stated, and checked against the adapted dataset
  config.train.epochs = 3
  config.train.batch_size = 256
  if variant == "parity":
    config.data.adapt.relabel = (0, 1, 0, 1, 0, 1, 0, 1, 0, 1)
    config.problem.num_classes = 2
  base.millisecond_epochs(config)
  return config
