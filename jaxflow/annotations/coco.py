"""Reading one annotator's boxes from a COCO-format JSON file, checked field by field.

Why a reader of our own instead of pycocotools: the agreement command needs three lists of a COCO file
(`images`, `annotations`, `categories`) and a one-line error naming the file and the field when one is
wrong; pycocotools asserts or raises KeyError on bad input and pulls a C extension in for nothing else.

The COCO box is `bbox: [x, y, width, height]` in pixels (x, y the top-left corner); it is returned as
(x_min, y_min, x_max, y_max), the convention of `jaxflow.annotations.boxes`. A width or height of 0 is
allowed (a degenerate box, which agrees with nothing); a negative one is refused. `categories` may be
missing, then categories are named by their id; when present, every `category_id` must be listed there.
Fields COCO defines that agreement does not use (`segmentation`, `area`, `iscrowd`, ...) are ignored.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np


class CocoError(ValueError):
  """A COCO file that cannot be read as boxes; the message is one line naming the file and the field."""


@dataclasses.dataclass(frozen=True)
class CocoBoxes:
  """One annotator's boxes, image by image.

  images: {image id: file name ('' when the file gives none)}, in the file's order.
  boxes: {image id: float32 [n, 4] (x_min, y_min, x_max, y_max)}, every image listed, possibly empty.
  categories: {image id: [n] category names}, aligned with boxes; a category is named by `name`, or by its
    id as a string when the file has no `categories` list.
  annotation_ids: {image id: [n] the annotations' `id` (their index in `annotations` when absent)}.
  """

  path: str
  images: dict[int, str]
  boxes: dict[int, np.ndarray]
  categories: dict[int, list[str]]
  annotation_ids: dict[int, list[int]]

  @property
  def category_names(self) -> list[str]:
    """Every category used by a box, sorted."""
    return sorted({c for names in self.categories.values() for c in names})


def _load(path: str) -> dict:
  if os.path.isdir(path):
    raise CocoError(f"{path}: is a folder, expected a COCO JSON file")
  if not os.path.isfile(path):
    raise CocoError(f"{path}: no such file")
  try:
    with open(path, encoding="utf-8") as f:
      data = json.load(f)
  except (UnicodeDecodeError, json.JSONDecodeError) as e:
    raise CocoError(f"{path}: not JSON ({' '.join(str(e).split())})") from None
  except RecursionError:
    raise CocoError(f"{path}: not a COCO file: its JSON is nested too deeply to read") from None
  except OSError as e:
    raise CocoError(f"{path}: cannot be read ({e.strerror})") from None
  if not isinstance(data, dict):
    raise CocoError(f"{path}: not a COCO file: the top level is a {type(data).__name__}, expected an object")
  for key in ("images", "annotations"):
    if key not in data:
      raise CocoError(f"{path}: not a COCO file: field {key!r} is missing (a COCO file has images and annotations)")
    if not isinstance(data[key], list):
      raise CocoError(f"{path}: field {key!r} is a {type(data[key]).__name__}, expected a list")
  if "categories" in data and not isinstance(data["categories"], list):
    raise CocoError(f"{path}: field 'categories' is a {type(data['categories']).__name__}, expected a list")
  return data


def _int_field(path: str, where: str, entry, key: str) -> int:
  """entry[key] as an int (a JSON integer; True/False and 3.5 are refused)."""
  if not isinstance(entry, dict):
    raise CocoError(f"{path}: {where} is a {type(entry).__name__}, expected an object")
  if key not in entry:
    raise CocoError(f"{path}: {where}.{key} is missing")
  value = entry[key]
  if isinstance(value, bool) or not isinstance(value, int):
    raise CocoError(f"{path}: {where}.{key} is {value!r}, expected an integer")
  return value


def _images(path: str, data: dict) -> dict[int, str]:
  images: dict[int, str] = {}
  for i, entry in enumerate(data["images"]):
    image_id = _int_field(path, f"images[{i}]", entry, "id")
    if image_id in images:
      raise CocoError(f"{path}: images[{i}].id {image_id} is listed twice")
    images[image_id] = str(entry.get("file_name", ""))
  return images


def _categories(path: str, data: dict) -> dict[int, str] | None:
  """{category id: name}, or None when the file has no `categories` list (ids then name themselves)."""
  if "categories" not in data:
    return None
  categories: dict[int, str] = {}
  for i, entry in enumerate(data["categories"]):
    category_id = _int_field(path, f"categories[{i}]", entry, "id")
    if category_id in categories:
      raise CocoError(f"{path}: categories[{i}].id {category_id} is listed twice")
    categories[category_id] = str(entry.get("name", category_id))
  return categories


def _bbox(path: str, where: str, entry: dict) -> list[float]:
  """[x_min, y_min, x_max, y_max] from COCO's [x, y, width, height]."""
  if "bbox" not in entry:
    raise CocoError(f"{path}: {where}.bbox is missing")
  bbox = entry["bbox"]
  numbers = isinstance(bbox, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox)
  if not numbers or len(bbox) != 4:
    raise CocoError(f"{path}: {where}.bbox is {bbox!r}, expected [x, y, width, height] (4 numbers)")
  # Boxes are compared in float32: a value (or x + width) beyond float32's range would become inf there, and a
  # 400-digit integer does not even convert to a float.
  try:
    x, y, w, h = (float(v) for v in bbox)
    corners = np.asarray([x, y, x + w, y + h], np.float64)
  except OverflowError:
    corners = np.asarray([np.inf])
  if not np.all(np.abs(corners) <= np.finfo(np.float32).max):
    shown = repr(bbox) if len(repr(bbox)) <= 80 else repr(bbox)[:77] + "..."
    raise CocoError(f"{path}: {where}.bbox is {shown}, which holds a value that is not a finite float32 number")
  for name, v in (("width", w), ("height", h)):
    if v < 0:
      raise CocoError(f"{path}: {where}.bbox has a negative {name} ({v:g}); bbox is [x, y, width, height]")
  return [x, y, x + w, y + h]


def read_coco(path: str) -> CocoBoxes:
  """The boxes of the COCO file at `path`; CocoError (one line, naming the file and the field) if it is not one."""
  data = _load(path)
  images = _images(path, data)
  categories = _categories(path, data)
  rows: dict[int, list] = {image_id: [] for image_id in images}
  seen_ids: set[int] = set()
  for i, entry in enumerate(data["annotations"]):
    where = f"annotations[{i}]"
    image_id = _int_field(path, where, entry, "image_id")
    if image_id not in images:
      raise CocoError(f"{path}: {where}.image_id {image_id} is not the id of an entry of 'images'")
    category_id = _int_field(path, where, entry, "category_id")
    if categories is not None and category_id not in categories:
      raise CocoError(f"{path}: {where}.category_id {category_id} is not the id of an entry of 'categories'")
    annotation_id = _int_field(path, where, entry, "id") if "id" in entry else i
    if annotation_id in seen_ids:
      raise CocoError(f"{path}: {where}.id {annotation_id} is used twice")
    seen_ids.add(annotation_id)
    name = categories[category_id] if categories is not None else str(category_id)
    rows[image_id].append((_bbox(path, where, entry), name, annotation_id))
  return CocoBoxes(
    path=path,
    images=images,
    boxes={k: np.asarray([r[0] for r in v], np.float32).reshape(-1, 4) for k, v in rows.items()},
    categories={k: [r[1] for r in v] for k, v in rows.items()},
    annotation_ids={k: [r[2] for r in v] for k, v in rows.items()},
  )


def coco_dict(
  images: list[tuple[int, str]],
  boxes: dict[int, list[tuple[list[float], str]]],
  categories: list[str],
) -> dict:
  """A COCO dict (images, annotations, categories) from (x_min, y_min, x_max, y_max) boxes with category names:
  the inverse of `read_coco`, for writing annotation sets (category ids are 1.. in the given order)."""
  ids = {name: k + 1 for k, name in enumerate(categories)}
  annotations = []
  for image_id, _ in images:
    for box, name in boxes.get(image_id, []):
      x0, y0, x1, y1 = (float(v) for v in box)
      annotations.append(
        {
          "id": len(annotations) + 1,
          "image_id": image_id,
          "category_id": ids[name],
          "bbox": [x0, y0, x1 - x0, y1 - y0],
          "area": (x1 - x0) * (y1 - y0),
          "iscrowd": 0,
        }
      )
  return {
    "images": [{"id": image_id, "file_name": name} for image_id, name in images],
    "annotations": annotations,
    "categories": [{"id": ids[name], "name": name} for name in categories],
  }
