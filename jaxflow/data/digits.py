"""`digits`: scikit-learn's 8x8 handwritten digits as a tfds dataset.

Why a tfds builder for data that sklearn already ships: the training loop reads every dataset the same
way (`tfds.data_source`, random access, no TensorFlow), so the dataset jaxflow ships goes through the
same path as any tfds dataset a user prepares. The data comes from the scikit-learn package itself,
so preparing needs no network.

Preparing without TensorFlow on tfds 4.9.10 needs two things, both done here or in `loading.py`:
- `file_format='array_record'` when the builder is created: the default, tfrecord, is written and read
  through TensorFlow, and `tfds.data_source` reads array_record only.
- The generator yields each image already PNG-encoded (bytes, encoded with Pillow). Handed a numpy
  array, `tfds.features.Image` encodes it with `tf.image.encode_png` and fails with
  "No module named 'tensorflow'"; handed bytes it stores them as they are. Reading decodes with
  OpenCV or, failing that, Pillow (no TF either way).

`builder_class()` defines the builder, which registers it with tfds under the name `digits` (tfds
registers every `GeneratorBasedBuilder` subclass by its snake-cased class name); `loading.py` calls it
before asking tfds for `digits`. The class is defined on that first call rather than at import because
subclassing needs tensorflow_datasets, which takes ~0.5 s to import: `import jaxflow.data` stays light.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterator

import numpy as np

NUM_CLASSES = 10
IMAGE_SHAPE = (8, 8, 1)
TEST_SIZE = 0.2
SPLIT_SEED = 0
VERSION = "1.0.0"  # where tfds prepares it: <data_dir>/digits/1.0.0


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
  """sklearn's digits as stored here: uint8 images [1797, 8, 8, 1] and int64 labels [1797].

  sklearn's pixels are counts 0..16 (4x4 blocks of a 32x32 bitmap); `round(p * 255 / 16)` spreads
  them over the full uint8 range so `image / 255` recovers `p / 16` within 1/510.
  """
  from sklearn.datasets import load_digits  # Deferred: sklearn is only needed to prepare.

  bunch = load_digits()
  images = np.round(bunch.images * 255.0 / 16.0).astype(np.uint8)[..., None]
  return images, bunch.target.astype(np.int64)


def split_arrays(images: np.ndarray, labels: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """The fixed, stratified 80/20 split: {'train': 1437 examples, 'test': 360}, each (images, labels).

  Stratified so that every class appears in both splits in proportion; `random_state` fixed so the
  split is part of the dataset's definition, not of a run.
  """
  from sklearn.model_selection import train_test_split  # Deferred: sklearn is only needed to prepare.

  x_train, x_test, y_train, y_test = train_test_split(
    images, labels, test_size=TEST_SIZE, stratify=labels, random_state=SPLIT_SEED
  )
  return {"train": (x_train, y_train), "test": (x_test, y_test)}


def encode_png(image: np.ndarray) -> bytes:
  """PNG bytes of a uint8 [height, width, 1] image, encoded with Pillow instead of TensorFlow."""
  from PIL import Image  # Deferred: only preparing encodes (Pillow comes with matplotlib; tfds decodes with it).

  buffer = io.BytesIO()
  Image.fromarray(image[..., 0]).save(buffer, format="png")  # uint8 [h, w] -> mode "L"
  return buffer.getvalue()


@functools.cache
def builder_class() -> type:
  """The `digits` tfds builder (a tfds.core.GeneratorBasedBuilder), defined and so registered on the first call."""
  # Deferred: tensorflow_datasets takes ~0.5 s to import; only preparing or reading digits needs it.
  import tensorflow_datasets as tfds

  class Digits(tfds.core.GeneratorBasedBuilder):
    """8x8 grey images of the digits 0..9 (UCI optdigits test set, as shipped by scikit-learn)."""

    VERSION = tfds.core.Version(VERSION)
    RELEASE_NOTES = {"1.0.0": "sklearn load_digits, stratified 80/20 split, random_state=0."}

    def _info(self) -> tfds.core.DatasetInfo:
      # DatasetInfo directly rather than `dataset_info_from_configs`, which would read a README.md or
      # CITATIONS.bib that happens to sit beside this module as the dataset's description.
      return tfds.core.DatasetInfo(
        builder=self,
        description=(
          "scikit-learn's 8x8 handwritten digits (1797 images, 10 classes); pixels 0..16 stored as "
          "uint8 round(p * 255 / 16). Fixed stratified split: 1437 train / 360 test."
        ),
        features=tfds.features.FeaturesDict(
          {
            "image": tfds.features.Image(shape=IMAGE_SHAPE, encoding_format="png"),
            "label": tfds.features.ClassLabel(num_classes=NUM_CLASSES),
          }
        ),
        supervised_keys=("image", "label"),
        homepage="https://archive.ics.uci.edu/dataset/80",
        # Keep sklearn's split order on disk (keys are 0..n-1): the stored order is then checkable
        # against sklearn, and shuffling is the training loop's job anyway.
        disable_shuffling=True,
      )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
      del dl_manager  # Nothing to download: the data is inside the scikit-learn package.
      splits = split_arrays(*digits_arrays())
      return {name: self._generate_examples(*arrays) for name, arrays in splits.items()}

    def _generate_examples(self, images: np.ndarray, labels: np.ndarray) -> Iterator[tuple[int, dict]]:
      """Yields (index, {'image': PNG bytes of [8, 8, 1] uint8, 'label': int}) in split order."""
      for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        yield index, {"image": encode_png(image), "label": int(label)}

  return Digits
