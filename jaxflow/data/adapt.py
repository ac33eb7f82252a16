"""Adapting a dataset to the problem from the config: resize, grayscale, relabel (merge or drop classes).

A tfds dataset rarely has exactly the inputs and outputs a problem states. The config bends it:
`data.input_feature` / `data.label_feature` select which features are the problem's input and label
(any feature of the dataset, e.g. cifar100's `coarse_label`), `data.classes` keeps a subset of
classes, and `data.adapt` changes what is left:

  data.adapt.resize = (8, 8)      # images resized to [8, 8, c] (bilinear, antialiased when shrinking)
  data.adapt.grayscale = True     # RGB -> luminance [h, w, 1] (ITU-R BT.601 weights)
  data.adapt.relabel = (0, 1, 0, 1, 0, 1, 0, 1, 0, 1)   # new label of each dataset label; -1 drops it

Order, fixed: `classes` (dataset labels) -> `relabel` -> `resize` -> `grayscale`. The problem is checked
against the adapted dataset (its input shape and number of classes), so `problem.input_shape=(8, 8, 1)`
with mnist is accepted once `resize=(8, 8)` is set. The adaptation runs once, on the host, when the
splits are loaded; evaluation data is adapted the same way as training data (it is the same problem).
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from jaxflow.config import ConfigError

LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601, what PIL's convert("L") uses


@dataclasses.dataclass(frozen=True)
class Adaptation:
  resize: tuple[int, int] | None = None
  grayscale: bool = False
  relabel: tuple[int, ...] | None = None

  @property
  def is_identity(self) -> bool:
    return self.resize is None and not self.grayscale and self.relabel is None

  def input_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The adapted input shape of one example."""
    shape = tuple(shape)
    if self.resize is not None:
      shape = (*self.resize, shape[2])
    if self.grayscale:
      shape = (*shape[:2], 1)
    return shape

  def num_classes(self, num_classes: int | None) -> int | None:
    if self.relabel is None or num_classes is None:
      return num_classes
    return max(self.relabel) + 1

  def labels(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(which examples are kept [n] bool, their new labels [kept]) under `relabel`."""
    if self.relabel is None:
      return np.ones(labels.shape[0], bool), labels
    mapped = np.asarray(self.relabel, np.int32)[labels]
    keep = mapped >= 0
    return keep, mapped[keep]

  def inputs(self, inputs: np.ndarray) -> np.ndarray:
    """float32 images [n, h, w, c] -> the adapted images."""
    if self.resize is not None and tuple(inputs.shape[1:3]) != tuple(self.resize):
      inputs = resize_images(inputs, self.resize)
    if self.grayscale and inputs.shape[-1] != 1:
      inputs = to_grayscale(inputs)
    return inputs


def resize_images(images: np.ndarray, size: tuple[int, int], *, chunk: int = 4096) -> np.ndarray:
  """[n, h, w, c] -> [n, *size, c], bilinear; antialiased when shrinking (jax.image.resize), in chunks
  so a large split never needs more than one chunk's worth of intermediate memory."""
  resize = jax.jit(lambda x: jax.image.resize(x, (x.shape[0], *size, x.shape[3]), "linear", antialias=True))
  parts = [np.asarray(resize(images[i : i + chunk])) for i in range(0, images.shape[0], chunk)]
  return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, *size, images.shape[3]), np.float32)


def to_grayscale(images: np.ndarray) -> np.ndarray:
  """[n, h, w, 3 or 4] -> [n, h, w, 1]: luminance of the RGB channels (an alpha channel is ignored)."""
  return (images[..., :3] @ np.asarray(LUMA_WEIGHTS, np.float32))[..., None].astype(np.float32)


def from_config(data_config, *, num_classes: int | None, input_shape: tuple[int, ...], dataset: str) -> Adaptation:
  """`config.data.adapt` checked against the dataset it adapts; ConfigError names the field."""
  adapt = data_config.adapt
  resize, grayscale, relabel = adapt.resize, adapt.grayscale, adapt.relabel
  if not isinstance(grayscale, bool):
    raise ConfigError(f"config.data.adapt.grayscale={grayscale!r} must be True or False")
  is_image = len(input_shape) == 3
  if resize is not None:
    if not (
      isinstance(resize, (tuple, list)) and len(resize) == 2 and all(isinstance(v, int) and v > 0 for v in resize)
    ):
      raise ConfigError(f"config.data.adapt.resize={resize!r} must be (height, width), two positive integers")
    resize = tuple(resize)
  if (resize is not None or grayscale) and not is_image:
    field = "resize" if resize is not None else "grayscale"
    raise ConfigError(
      f"config.data.adapt.{field} needs image inputs [height, width, channels]; {dataset!r} feature "
      f"{data_config.input_feature!r} has shape {tuple(input_shape)}"
    )
  if grayscale and input_shape[2] not in (1, 3, 4):
    raise ConfigError(f"config.data.adapt.grayscale needs 1, 3 or 4 channels; {dataset!r} has {input_shape[2]}")
  if relabel is not None:
    if num_classes is None:
      raise ConfigError(
        f"config.data.adapt.relabel needs class labels; {dataset!r} feature {data_config.label_feature!r} has none"
      )
    if not (isinstance(relabel, (tuple, list)) and all(isinstance(v, int) and v >= -1 for v in relabel)):
      raise ConfigError(
        f"config.data.adapt.relabel={relabel!r} must be a tuple of integers >= -1 (the new label of each dataset "
        "label; -1 drops it)"
      )
    relabel = tuple(relabel)
    if len(relabel) != num_classes:
      raise ConfigError(
        f"config.data.adapt.relabel has {len(relabel)} entries; {dataset!r} has {num_classes} classes, one entry each "
        f"(e.g. {tuple(i % 2 for i in range(num_classes))})"
      )
    kept = sorted(set(relabel) - {-1})
    if not kept:
      raise ConfigError(f"config.data.adapt.relabel={relabel} drops every class")
    if kept != list(range(len(kept))):
      missing = sorted(set(range(max(kept) + 1)) - set(kept))
      raise ConfigError(
        f"config.data.adapt.relabel={relabel} leaves new label(s) {missing} empty; new labels must be 0..K-1"
      )
  return Adaptation(resize=resize, grayscale=grayscale, relabel=relabel)


def apply(split, adaptation: Adaptation):
  """A loaded `jaxflow.data.Split` adapted: dropped classes' examples removed (metadata rows too)."""
  if adaptation.is_identity:
    return split
  keep, labels = adaptation.labels(split.labels)
  inputs = split.inputs if keep.all() else split.inputs[keep]
  metadata = {name: values[keep] for name, values in split.metadata.items()}
  return dataclasses.replace(split, inputs=adaptation.inputs(inputs), labels=labels.astype(np.int32), metadata=metadata)
