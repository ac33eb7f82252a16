"""'folder:PATH': a folder of images, one subfolder per class (optionally inside split folders), as a
parsed `Table` of PNG-encoded images, labels and file names.

Pillow reads and re-encodes the images (tfds' own encoder needs TensorFlow); it is imported inside the
functions that use it, so that importing `jaxflow.data` does not load it.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence

import numpy as np

from jaxflow.data.custom.parsed import (
  SHUFFLE_SEED,
  Table,
  check_split_name,
  class_spec,
  describe,
  ordered_splits,
  select,
)
from jaxflow.data.store import DatasetError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")

_GRAY_MODES = ("1", "L", "LA")
_COLOR_MODES = ("P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr")
_EXPECTED = "expected PATH/<class>/<image> or PATH/<split>/<class>/<image>"


def visible(entries: Sequence[os.DirEntry]) -> list[os.DirEntry]:
  """The entries whose name doesn't start with '.', sorted by name."""
  return sorted((e for e in entries if not e.name.startswith(".")), key=lambda e: e.name)


def _images_in(folder: str) -> list[str]:
  with os.scandir(folder) as it:
    return [e.path for e in visible(list(it)) if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS)]


def _subfolders(folder: str) -> list[str]:
  with os.scandir(folder) as it:
    return [e.path for e in visible(list(it)) if e.is_dir()]


def _class_layout(tops: list[str], with_images: list[str]) -> dict[str, dict[str, list[str]]]:
  """{'train': {class: images}} for PATH/class/image, where every top folder must hold images."""
  for top in tops:
    if not _images_in(top):
      inner = "holds subfolders but no images" if _subfolders(top) else "holds no images"
      raise DatasetError(
        f"{top}: class folder {inner}, while {with_images[0]} holds images ({_EXPECTED}; "
        f"images: {', '.join(IMAGE_EXTENSIONS)})."
      )
  return {"train": {os.path.basename(t): _images_in(t) for t in tops}}


def _split_layout(path: str, tops: list[str]) -> dict[str, dict[str, list[str]]]:
  """{split: {class: images}} for PATH/split/class/image; every class must hold images in some split."""
  layout = {}
  for top in tops:  # No folder holds images directly, some hold subfolders: these are split folders.
    split = os.path.basename(top)
    check_split_name(split, top)
    classes = _subfolders(top)
    if not classes:
      raise DatasetError(f"{top}: split folder holds no class subfolders ({_EXPECTED}).")
    layout[split] = {os.path.basename(c): _images_in(c) for c in classes}
  all_classes = sorted({c for classes in layout.values() for c in classes})
  for cls in all_classes:
    if not any(layout[s].get(cls) for s in layout):
      folders = [os.path.join(path, s, cls) for s in layout if cls in layout[s]]
      raise DatasetError(f"{folders[0]}: class folder holds no images (images: {', '.join(IMAGE_EXTENSIONS)}).")
  return {split: layout[split] for split in ordered_splits(layout)}


def _folder_layout(path: str) -> dict[str, dict[str, list[str]]]:
  """{split: {class: [image paths, sorted]}}: PATH/class/image, or PATH/split/class/image."""
  tops = _subfolders(path)
  if not tops:
    raise DatasetError(f"{path}: no class subfolders ({_EXPECTED}).")
  stray = _images_in(path)
  if stray:
    raise DatasetError(f"{stray[0]}: image outside any class folder ({_EXPECTED}).")
  with_images = [t for t in tops if _images_in(t)]
  if with_images:
    return _class_layout(tops, with_images)
  if not any(_subfolders(t) for t in tops):
    raise DatasetError(f"{path}: no images in any class folder ({_EXPECTED}; images: {', '.join(IMAGE_EXTENSIONS)}).")
  return _split_layout(path, tops)


def _read_image(file: str) -> np.ndarray:
  """uint8 [h, w, 1] (grayscale) or [h, w, 3] (colour) pixels of one image file, via Pillow."""
  from PIL import Image  # Deferred: only converting a folder reads images.

  try:
    with Image.open(file) as image:
      image.load()
      mode = image.mode
      if mode in _GRAY_MODES:
        pixels = np.asarray(image.convert("L"))[..., None]
      elif mode in _COLOR_MODES:
        pixels = np.asarray(image.convert("RGB"))
      else:
        raise DatasetError(
          f"{file}: image mode {mode!r} is not supported (8-bit grayscale or colour only; "
          "convert 16-bit or float images first)."
        )
  except DatasetError:
    raise
  except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
    reason = " ".join(str(e).split()) or type(e).__name__
    raise DatasetError(f"{file}: cannot read image ({reason}).") from None
  return pixels


def _encode_png(pixels: np.ndarray) -> bytes:
  """PNG bytes by Pillow: tfds' Image feature would encode with TensorFlow."""
  from PIL import Image  # Deferred: only converting a folder encodes images.

  buffer = io.BytesIO()
  Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(buffer, format="png")
  return buffer.getvalue()


def _image_kind(pixels: np.ndarray) -> str:
  height, width, channels = pixels.shape
  return f"{width}x{height} {'grayscale' if channels == 1 else 'RGB'}"


class _ShapeCheck:
  """Every image must have the shape of the first one read; remembers that one for the error message."""

  def __init__(self) -> None:
    self.first_file, self.first_kind, self.shape = None, None, None

  def __call__(self, file: str, pixels: np.ndarray) -> None:
    if self.shape is None:
      self.first_file, self.first_kind, self.shape = file, _image_kind(pixels), pixels.shape
    elif pixels.shape != self.shape:
      raise DatasetError(
        f"{file}: image is {_image_kind(pixels)}, but {self.first_file} (the first image) is "
        f"{self.first_kind}; every image must have the same size and mode."
      )


def _read_split(
  path: str, classes: dict[str, list[str]], class_index: dict[str, int], check: _ShapeCheck
) -> dict[str, list]:
  """One split's columns in the fixed shuffled order: PNG bytes, labels and paths relative to `path`."""
  images, labels, filenames = [], [], []
  for cls in sorted(classes):
    for file in classes[cls]:
      pixels = _read_image(file)
      check(file, pixels)
      images.append(_encode_png(pixels))
      labels.append(class_index[cls])
      filenames.append(os.path.relpath(file, path).replace(os.sep, "/"))
  columns = {"image": images, "label": np.asarray(labels, np.int64), "filename": filenames}
  return select(columns, np.random.default_rng(SHUFFLE_SEED).permutation(len(labels)))


def read_folder(path: str) -> Table:
  """The images under folder `path` as a Table: features `image`, `label` and `filename`."""
  layout = _folder_layout(path)
  class_names = sorted({c for classes in layout.values() for c in classes})
  class_index = {c: i for i, c in enumerate(class_names)}
  check = _ShapeCheck()
  splits = {split: _read_split(path, classes, class_index, check) for split, classes in layout.items()}
  description = describe(
    "folder",
    path,
    f"classes (sorted folder names): {', '.join(class_names)}; splits: {', '.join(splits)}; "
    f"each split in the fixed order np.random.default_rng({SHUFFLE_SEED}).permutation(n) of the sorted listing.",
  )
  features = {"image": ("image", check.shape), "label": class_spec(class_names), "filename": ("text",)}
  return Table(features=features, splits=splits, description=description)
