"""The files the study writes: one NPZ per label set for jaxflow to train on, COCO files for `jaxflow.agreement`.

Why one row per (scene, coordinate): jaxflow's regression problem has one output (`problem.output_dim` is 1 for
`problem.kind=regression`) and an NPZ label is one integer per row, so a box's four numbers cannot be one
target. Each scene is written four times, its pixels followed by a one-hot of which coordinate is asked for
(x_min, y_min, x_max, y_max), the label that coordinate in whole pixels: one model, trained once, predicts a
whole box in four queries. The labels are whole pixels because the annotators snap to the pixel grid anyway.
"""

from __future__ import annotations

import json
import os

import numpy as np

from experiments.annotation_consistency import scenes as scenes_lib

COORDINATES = ("x_min", "y_min", "x_max", "y_max")
IMAGE_ID_BASE = 1  # COCO image ids: test scene k is image k + 1


def query_rows(images: np.ndarray) -> np.ndarray:
  """float32 [4 n, pixels + 4]: each image's pixels (/255) with the one-hot of each coordinate, coordinate-major
  (rows k * n .. (k + 1) * n - 1 ask every image for coordinate k)."""
  flat = images.reshape(len(images), -1).astype(np.float32) / 255.0
  rows = []
  for k in range(len(COORDINATES)):
    onehot = np.zeros((len(images), len(COORDINATES)), np.float32)
    onehot[:, k] = 1.0
    rows.append(np.concatenate([flat, onehot], axis=1))
  return np.concatenate(rows)


def boxes_from_rows(values: np.ndarray, n: int) -> np.ndarray:
  """The model's outputs on `query_rows` of n images ([4 n] or [4 n, 1]) back to boxes [n, 4]."""
  return np.asarray(values, np.float32).reshape(len(COORDINATES), n).T


def build_npz(path: str, images: np.ndarray, labels: np.ndarray, train: np.ndarray) -> dict:
  """Writes x, y, split (training rows first, shuffled once) to `path`; returns the row counts for the report."""
  x = query_rows(images)
  y = np.concatenate([np.round(labels[:, k]) for k in range(len(COORDINATES))]).astype(np.int64)
  split = np.tile(np.where(train, "train", "test"), len(COORDINATES))
  # Training rows in one fixed shuffle, so a prefix (`data.train_examples`, the quick run) asks for every coordinate.
  train_rows, test_rows = np.flatnonzero(split == "train"), np.flatnonzero(split != "train")
  rows = np.concatenate([np.random.default_rng(0).permutation(train_rows), test_rows])
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  np.savez(path, x=x[rows], y=y[rows], split=split[rows])
  return {"train_rows": int((split == "train").sum()), "test_rows": int((split == "test").sum())}


def coco(boxes: dict[str, np.ndarray]) -> dict:
  """A COCO dict of the test scenes: images 1..n, one annotation per box that is not NaN, categories by object."""
  n = len(next(iter(boxes.values())))
  categories = [name for name in scenes_lib.OBJECTS if name in boxes]
  annotations = []
  for k in range(n):
    for c, name in enumerate(categories):
      box = boxes[name][k]
      if np.isnan(box).any():
        continue
      x0, y0, x1, y1 = (float(v) for v in box)
      # A model may predict x_max < x_min: written as a zero-width box (zero area, IoU 0 with anything), as
      # jaxflow.annotations.boxes treats an inverted box, since COCO has no negative widths.
      bbox = [x0, y0, max(0.0, x1 - x0), max(0.0, y1 - y0)]
      ann = {"id": len(annotations) + 1, "image_id": k + IMAGE_ID_BASE, "category_id": c + 1, "bbox": bbox}
      annotations.append(ann | {"area": bbox[2] * bbox[3], "iscrowd": 0})
  return {
    "images": [
      {"id": k + IMAGE_ID_BASE, "file_name": f"scene_{k:04d}.png", "width": scenes_lib.SIZE, "height": scenes_lib.SIZE}
      for k in range(n)
    ],
    "annotations": annotations,
    "categories": [{"id": c + 1, "name": name} for c, name in enumerate(categories)],
  }


def write_coco(path: str, boxes: dict[str, np.ndarray]) -> str:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "w") as f:
    json.dump(coco(boxes), f)
  return path
