"""Pictures for TensorBoard drawn with numpy alone: cheap enough to write during training.

A matplotlib figure of a 10-class confusion matrix took ~275 ms to render here (tight_layout, text
layout), more than ten epochs of the digits MLP: rendering it every few epochs cut that run's
throughput in half. This renderer draws the same information (cells coloured by the share of the true
class, the counts written in, class ids along both axes) in well under a millisecond, with a 3x5 pixel
font for the digits.
"""

from __future__ import annotations

import functools

import numpy as np

# 3x5 bitmaps of the digits 0-9, one string per row ("#" = ink).
_GLYPHS = {
  "0": ("###", "#.#", "#.#", "#.#", "###"),
  "1": (".#.", "##.", ".#.", ".#.", "###"),
  "2": ("###", "..#", "###", "#..", "###"),
  "3": ("###", "..#", "###", "..#", "###"),
  "4": ("#.#", "#.#", "###", "..#", "..#"),
  "5": ("###", "#..", "###", "..#", "###"),
  "6": ("###", "#..", "###", "#.#", "###"),
  "7": ("###", "..#", "..#", "..#", "..#"),
  "8": ("###", "#.#", "###", "#.#", "###"),
  "9": ("###", "#.#", "###", "..#", "###"),
}
_FONT = {c: np.array([[ch == "#" for ch in row] for row in rows]) for c, rows in _GLYPHS.items()}
_BLUE_LIGHT, _BLUE_DARK = np.array([247, 251, 255], np.float64), np.array([8, 48, 107], np.float64)


@functools.lru_cache(maxsize=1024)
def _text_mask(text: str, scale: int) -> np.ndarray:
  """[5*scale, (4*len - 1)*scale] bool: `text` (digits only) in the bitmap font, one blank column apart."""
  columns = []
  for i, char in enumerate(text):
    if i:
      columns.append(np.zeros((5, 1), bool))
    columns.append(_FONT[char])
  mask = np.concatenate(columns, axis=1)
  mask = np.kron(mask, np.ones((scale, scale), bool)).astype(bool)
  mask.setflags(write=False)  # cached: shared by every call
  return mask


def _stamp(image: np.ndarray, text: str, center: tuple[int, int], colour, scale: int) -> None:
  mask = _text_mask(text, scale)
  h, w = mask.shape
  top, left = center[0] - h // 2, center[1] - w // 2
  region = image[top : top + h, left : left + w]
  region[mask[: region.shape[0], : region.shape[1]]] = colour


def confusion_image(confusion: np.ndarray, *, cell: int | None = None, class_names=None) -> np.ndarray:
  """[C, C] counts (rows the true class, columns the predicted one) -> RGB uint8 [H, W, 3].

  A cell's colour runs from white to dark blue with its share of the true class (the row's recall), so
  a collapsed rare class shows as a pale diagonal cell however few examples it has. Counts are written
  in the cells (white on dark), class ids along the top and the left edge; with `class_names` that are more
  than the ids (a folder's, a CSV's), a legend column on the right says which id is which name.
  """
  confusion = np.asarray(confusion, np.float64)
  num_classes = confusion.shape[0]
  rows = confusion.sum(axis=1, keepdims=True)
  share = np.divide(confusion, rows, out=np.zeros_like(confusion), where=rows > 0)
  largest = max(len(str(int(confusion.max()))) if confusion.size else 1, len(str(num_classes - 1)))
  scale = 2 if num_classes <= 20 else 1
  cell = cell or max(4 * largest * scale + 4, 5 * scale + 6)
  margin = 5 * scale + 8
  size = margin + num_classes * cell
  image = np.full((size, size, 3), 255, np.uint8)
  colours = _BLUE_LIGHT + share[..., None] * (_BLUE_DARK - _BLUE_LIGHT)
  grid = np.repeat(np.repeat(colours, cell, axis=0), cell, axis=1)
  image[margin:, margin:] = grid.astype(np.uint8)
  image[margin:, margin::cell] = image[margin::cell, margin:] = 200  # cell borders
  for c in range(num_classes):
    middle = margin + c * cell + cell // 2
    _stamp(image, str(c), (margin // 2, middle), (0, 0, 0), scale)
    _stamp(image, str(c), (middle, margin // 2), (0, 0, 0), scale)
  if num_classes <= 20:
    for i in range(num_classes):
      for j in range(num_classes):
        ink = (255, 255, 255) if share[i, j] > 0.5 else (0, 0, 0)
        centre = (margin + i * cell + cell // 2, margin + j * cell + cell // 2)
        _stamp(image, str(int(confusion[i, j])), centre, ink, scale)
  names = [str(n) for n in class_names] if class_names else None
  if names and names != [str(c) for c in range(num_classes)]:
    image = _with_legend(image, names, margin, cell)
  return image


def _with_legend(image: np.ndarray, names: list[str], margin: int, cell: int) -> np.ndarray:
  """`image` with "id name" per class beside its row, in PIL's built-in bitmap font (well under a ms)."""
  from PIL import Image, ImageDraw  # deferred: only a run whose classes have names draws them

  width = 12 + 6 * max(len(f"{i} {n}") for i, n in enumerate(names))
  canvas = Image.new("RGB", (image.shape[1] + width, image.shape[0]), (255, 255, 255))
  canvas.paste(Image.fromarray(image), (0, 0))
  draw = ImageDraw.Draw(canvas)
  for i, name in enumerate(names):
    draw.text((image.shape[1] + 6, margin + i * cell + cell // 2 - 5), f"{i} {name}", fill=(0, 0, 0))
  return np.asarray(canvas)
