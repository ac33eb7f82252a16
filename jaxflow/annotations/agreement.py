"""Two annotators' COCO files compared box by box: the numbers `jaxflow agree` reports.

Images are paired by their COCO `id`; an image listed in only one file counts, with no boxes on the other
side (so every box of it is unmatched), and is named in `images_only_in_a` / `_b`. Categories are paired by
name (two files may number the same categories differently); a box is only ever matched with a box of the
same category. Matching is `annotator_agreement`'s: per image and category, the Hungarian assignment that
maximizes total IoU, a pair matched when its IoU >= the threshold.

Shares, and why three of them: `matched_share_a` = matched / A's boxes (how much of A that B confirms),
`matched_share_b` the same for B, and `agreement` = 2 * matched / (A's + B's boxes), their harmonic mean
(F1), one number symmetric in the two annotators.
"""

from __future__ import annotations

import math

import numpy as np

from jaxflow.annotations.boxes import annotator_agreement
from jaxflow.annotations.coco import CocoBoxes, read_coco

COUNTS = ("n_a", "n_b", "n_matched", "n_below_threshold", "unmatched_a", "unmatched_b")


def _nan_to_none(value: float) -> float | None:
  return None if value is None or math.isnan(value) else float(value)


def _share(part: int, whole: int) -> float | None:
  return part / whole if whole else None


def _summary(result: dict) -> dict:
  """The counts and shares of one `annotator_agreement` result (all images, or one)."""
  out = {k: int(result[k]) for k in COUNTS}
  ious = [r["ious"] for r in result["per_image"]] if "per_image" in result else [result["ious"]]
  assigned = np.concatenate([np.zeros(0, np.float32), *ious])
  out["mean_iou"] = _nan_to_none(result["mean_iou"])
  # Every overlapping pair the assignment made, matched or not: how close the boxes are, threshold aside.
  out["mean_iou_assigned"] = float(assigned.mean()) if assigned.size else None
  out["matched_share_a"] = _share(out["n_matched"], out["n_a"])
  out["matched_share_b"] = _share(out["n_matched"], out["n_b"])
  out["agreement"] = float(result["agreement"])
  return out


def _aligned(a: CocoBoxes, b: CocoBoxes) -> tuple[list[int], list[str]]:
  """Image ids of both files (A's order, then B's others) and warnings about file names that differ."""
  ids = list(a.images) + [i for i in b.images if i not in a.images]
  warnings = [
    f"image {i} is {a.images[i]!r} in A but {b.images[i]!r} in B"
    for i in ids
    if i in a.images and i in b.images and a.images[i] and b.images[i] and a.images[i] != b.images[i]
  ]
  return ids, warnings


def _side(boxes: CocoBoxes, ids: list[int], category: str | None) -> tuple[list[np.ndarray], list[np.ndarray], list]:
  """Per image: boxes [n, 4], category names [n] and annotation ids (of one category when given)."""
  out_boxes, out_names, out_ids = [], [], []
  for i in ids:
    b = boxes.boxes.get(i, np.zeros((0, 4), np.float32))
    names = np.asarray(boxes.categories.get(i, []), dtype=object)
    ann = np.asarray(boxes.annotation_ids.get(i, []), dtype=np.int64)
    keep = np.ones(len(b), bool) if category is None else names == category
    out_boxes.append(b[keep])
    out_names.append(names[keep].astype(str) if keep.any() else np.zeros(0, str))
    out_ids.append(ann[keep])
  return out_boxes, out_names, out_ids


def _pairs(r: dict, ids_a, ids_b, names_a) -> list[dict]:
  return [
    {
      "a_annotation_id": int(ids_a[i]),
      "b_annotation_id": int(ids_b[j]),
      "category": str(names_a[i]),
      "iou": round(float(iou), 6),
      "matched": bool(m),
    }
    for (i, j), iou, m in zip(r["pairs"], r["ious"], r["matched"])
  ]


def compare_files(a_path: str, b_path: str, *, iou_threshold: float = 0.5) -> dict:
  """Agreement of the COCO files `a_path` and `b_path` (see `compare`); raises `CocoError` (one line naming the
  file and the field) for a file that is not COCO boxes, before anything is computed."""
  if not 0 < iou_threshold <= 1:
    raise ValueError(f"the IoU threshold must be in (0, 1], got {iou_threshold}")
  return compare(read_coco(a_path), read_coco(b_path), iou_threshold=iou_threshold)


def compare(a: CocoBoxes, b: CocoBoxes, *, iou_threshold: float = 0.5) -> dict:
  """Agreement of two annotators' boxes (`coco.read_coco`): overall, per category and per image.

  Returns {'a', 'b', 'iou_threshold', 'n_images', 'images_only_in_a', 'images_only_in_b', 'warnings',
  'overall', 'per_category': {name: ...}, 'per_image': [...]}, where overall, each category and each image
  hold n_a, n_b, n_matched, n_below_threshold (overlapping pairs under the threshold), unmatched_a,
  unmatched_b, mean_iou (matched pairs; None when none), mean_iou_assigned (every overlapping assigned
  pair), matched_share_a, matched_share_b and agreement (F1); each image also lists its 'pairs'.
  """
  ids, warnings = _aligned(a, b)
  boxes_a, names_a, ann_a = _side(a, ids, None)
  boxes_b, names_b, ann_b = _side(b, ids, None)
  overall = annotator_agreement(boxes_a, boxes_b, iou_threshold=iou_threshold, labels_a=names_a, labels_b=names_b)
  per_category = {}
  for name in sorted(set(a.category_names) | set(b.category_names)):
    cat_a, cat_b = _side(a, ids, name)[0], _side(b, ids, name)[0]
    per_category[name] = _summary(annotator_agreement(cat_a, cat_b, iou_threshold=iou_threshold))
  per_image = []
  for k, image_id in enumerate(ids):
    r = overall["per_image"][k]
    file_name = a.images.get(image_id) or b.images.get(image_id, "")
    row = {"image_id": image_id, "file_name": file_name, **_summary(r)}
    per_image.append(row | {"pairs": _pairs(r, ann_a[k], ann_b[k], names_a[k])})
  return {
    "a": a.path,
    "b": b.path,
    "iou_threshold": iou_threshold,
    "n_images": len(ids),
    "images_only_in_a": [i for i in ids if i not in b.images],
    "images_only_in_b": [i for i in ids if i not in a.images],
    "warnings": warnings,
    "overall": _summary(overall),
    "per_category": per_category,
    "per_image": per_image,
  }
