"""Bounding boxes for annotation work: IoU, agreement between two annotators, 3D-to-2D projection.

2D box convention, everywhere in this module: a box is (x_min, y_min, x_max, y_max) in continuous image
coordinates, with no "+1": a box's width is x_max - x_min, so [0, 0, 1, 1] is one pixel wide when pixel
i covers [i, i + 1). A box with x_max <= x_min or y_max <= y_min has zero area; its IoU with anything,
itself included, is 0 (not NaN), so a degenerate annotation never counts as agreeing with anything.

3D convention (`project_box3d`): KITTI's camera-style axes, x right, y down, z forward, with yaw a
rotation about the vertical y axis. Identity extrinsics therefore put the world in the camera's frame,
and "straight ahead" is +z.

IoUs are computed by jitted jax functions in float32 (jax's default): an IoU that is exactly a
threshold in exact arithmetic may land a rounding error either side of it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import linear_sum_assignment

# --- IoU -------------------------------------------------------------------------------------------


def _area(boxes: jax.Array) -> jax.Array:
  """Areas [...] of boxes [..., 4]; an inverted box (max < min) has area 0, not a negative one."""
  return jnp.clip(boxes[..., 2] - boxes[..., 0], 0) * jnp.clip(boxes[..., 3] - boxes[..., 1], 0)


def _iou_from_corners(a: jax.Array, b: jax.Array) -> jax.Array:
  """IoU of boxes a [..., 4] and b [..., 4] that already broadcast against each other.

  The double `where` keeps both the value and its gradient finite when the union is empty (two
  zero-area boxes): dividing by the union first and masking afterwards would leave NaN gradients.
  """
  top_left = jnp.maximum(a[..., :2], b[..., :2])
  bottom_right = jnp.minimum(a[..., 2:], b[..., 2:])
  extent = jnp.clip(bottom_right - top_left, 0)
  inter = extent[..., 0] * extent[..., 1]
  union = _area(a) + _area(b) - inter
  nonempty = union > 0
  return jnp.where(nonempty, inter / jnp.where(nonempty, union, 1), 0)


def _as_float(a, b) -> tuple[jax.Array, jax.Array]:
  """Both inputs as one float dtype (integer pixel boxes would otherwise make integer areas)."""
  a, b = jnp.asarray(a), jnp.asarray(b)
  dtype = jnp.result_type(a.dtype, b.dtype, jnp.float32)
  return a.astype(dtype), b.astype(dtype)


@jax.jit
def box_iou(a: jax.Array, b: jax.Array) -> jax.Array:
  """Pairwise IoU [..., N, M] of boxes a [..., N, 4] and b [..., M, 4] (x_min, y_min, x_max, y_max).

  Continuous coordinates, no +1 (see the module docstring); zero-area boxes give 0, never NaN. The
  leading dimensions broadcast, so one set of boxes can be compared against a batch of sets.
  """
  a, b = _as_float(a, b)
  return _iou_from_corners(a[..., :, None, :], b[..., None, :, :])


@jax.jit
def box_iou_aligned(a: jax.Array, b: jax.Array) -> jax.Array:
  """Elementwise IoU [...] of boxes a [..., 4] and b [..., 4]: the diagonal of `box_iou`, without the
  N x M matrix, for boxes that are already paired (a prediction and its target, say)."""
  a, b = _as_float(a, b)
  return _iou_from_corners(a, b)


# --- Agreement of two annotators -------------------------------------------------------------------

# Cap on the padded IoU entries computed in one `box_iou` call: bounds memory when an annotation set
# holds many crowded images (2**22 float32 entries = 16 MiB).
_MAX_ENTRIES_PER_CALL = 1 << 22


def _next_pow2(n: int) -> int:
  return 1 << max(0, (n - 1).bit_length())


def _as_boxes(boxes, name: str, image: int) -> np.ndarray:
  """One image's boxes as float32 [n, 4]; an empty list or array is an image with no boxes."""
  boxes = np.asarray(boxes, dtype=np.float32)
  if boxes.size == 0:
    return boxes.reshape(0, 4)
  if boxes.ndim != 2 or boxes.shape[1] != 4:
    raise ValueError(f"{name}[{image}] must have shape [n, 4] (x_min, y_min, x_max, y_max), got {boxes.shape}")
  return boxes


def _iou_matrices(boxes_a: list[np.ndarray], boxes_b: list[np.ndarray]) -> list[np.ndarray]:
  """IoU matrix [n_a, n_b] of every image, through the jitted `box_iou`.

  Why the padding: calling `box_iou` image by image would compile once per distinct (n_a, n_b).
  Images are grouped by max(n_a, n_b) rounded up to a power of two, padded with zero-area boxes (IoU 0
  with everything, and sliced off anyway) and stacked, the image count also rounded up to a power of
  two; so a whole annotation set costs a handful of compilations and calls. Padding at most doubles
  each axis, so the work stays within 8x of the unpadded matrices.
  """
  ious = [np.zeros((len(a), len(b)), np.float32) for a, b in zip(boxes_a, boxes_b)]
  by_size: dict[int, list[int]] = {}
  for i, (a, b) in enumerate(zip(boxes_a, boxes_b)):
    if len(a) and len(b):
      by_size.setdefault(_next_pow2(max(len(a), len(b))), []).append(i)
  for size, images in sorted(by_size.items()):
    per_call = max(1, _MAX_ENTRIES_PER_CALL // (size * size))  # a power of two, as both sides are
    for start in range(0, len(images), per_call):
      chunk = images[start : start + per_call]
      padded_a = np.zeros((_next_pow2(len(chunk)), size, 4), np.float32)
      padded_b = np.zeros_like(padded_a)
      for k, i in enumerate(chunk):
        padded_a[k, : len(boxes_a[i])] = boxes_a[i]
        padded_b[k, : len(boxes_b[i])] = boxes_b[i]
      chunk_iou = np.asarray(box_iou(padded_a, padded_b))
      for k, i in enumerate(chunk):
        ious[i] = chunk_iou[k, : len(boxes_a[i]), : len(boxes_b[i])]
  return ious


def _assign(iou: np.ndarray, labels_a: np.ndarray | None, labels_b: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
  """Rows and columns of the assignment maximizing total IoU, only between boxes of the same label.

  Same-label pairs make a complete bipartite graph per label, and no pair crosses labels, so the best
  assignment overall is the best one within each label separately: one `linear_sum_assignment` per
  label is exact, where penalizing cross-label entries in one big matrix would only approximate it.
  """
  if labels_a is None:
    groups = [(np.arange(iou.shape[0]), np.arange(iou.shape[1]))]
  else:
    shared = np.intersect1d(labels_a, labels_b)
    groups = [(np.flatnonzero(labels_a == label), np.flatnonzero(labels_b == label)) for label in shared]
  rows, cols = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
  for in_a, in_b in groups:
    if len(in_a) and len(in_b):
      r, c = linear_sum_assignment(iou[np.ix_(in_a, in_b)], maximize=True)
      rows.append(in_a[r])
      cols.append(in_b[c])
  return np.concatenate(rows), np.concatenate(cols)


def _f1(matched: int, n_a: int, n_b: int) -> float:
  """2 * matched / (n_a + n_b); two annotators who both drew nothing agree completely (1.0)."""
  return 1.0 if n_a + n_b == 0 else 2.0 * matched / (n_a + n_b)


def _mean(values: np.ndarray) -> float:
  return float(np.mean(values)) if len(values) else float("nan")


def _share(part: int, whole: int) -> float:
  return part / whole if whole else float("nan")


def _image_result(iou: np.ndarray, labels_a, labels_b, iou_threshold: float) -> dict:
  rows, cols = _assign(iou, labels_a, labels_b)
  pair_iou = iou[rows, cols]
  # A Hungarian pair with no overlap at all is arbitrary (any two disjoint boxes would do): it is left
  # unassigned, so 'below threshold' means boxes that do overlap but not enough.
  keep = pair_iou > 0
  order = np.argsort(rows[keep], kind="stable")
  pairs = np.stack([rows[keep][order], cols[keep][order]], axis=1).astype(np.int64)
  pair_iou = pair_iou[keep][order].astype(np.float32)
  matched = pair_iou >= iou_threshold
  n_a, n_b, n_matched = iou.shape[0], iou.shape[1], int(matched.sum())
  return {
    "n_a": n_a,
    "n_b": n_b,
    "n_assigned": len(pairs),
    "n_matched": n_matched,
    "n_below_threshold": len(pairs) - n_matched,
    "below_threshold_share": _share(len(pairs) - n_matched, len(pairs)),
    "unmatched_a": n_a - n_matched,
    "unmatched_b": n_b - n_matched,
    "mean_iou": _mean(pair_iou[matched]),
    "agreement": _f1(n_matched, n_a, n_b),
    "pairs": pairs,
    "ious": pair_iou,
    "matched": matched,
  }


def annotator_agreement(
  boxes_a: Sequence[np.ndarray],
  boxes_b: Sequence[np.ndarray],
  *,
  iou_threshold: float = 0.5,
  labels_a: Sequence[np.ndarray] | None = None,
  labels_b: Sequence[np.ndarray] | None = None,
) -> dict:
  """How well two annotators' boxes on the same images agree.

  boxes_a[i], boxes_b[i]: the two annotators' boxes on image i, [n, 4] (x_min, y_min, x_max, y_max);
  an image may have no boxes on either side. labels_a / labels_b (both or neither): per image, one
  label per box (ints or strings); boxes are then only ever paired with boxes of the same label.

  Per image, boxes are paired by the Hungarian assignment that maximizes the total IoU (not greedily:
  taking the best-overlapping pair first can leave its neighbours with no partner, see the tests).
  Assigned pairs with IoU 0 are dropped, since pairing two disjoint boxes is arbitrary; an assigned
  pair is *matched* when its IoU >= iou_threshold. Every box not in a matched pair is unmatched, so a
  pair below the threshold leaves one unmatched box on each side.

  Returns a dict of totals over all images:
    'n_images', 'n_a', 'n_b': images and boxes per annotator;
    'n_assigned', 'n_matched', 'n_below_threshold': assigned pairs, those at or above the threshold,
      those below it (overlapping, but not enough);
    'below_threshold_share': n_below_threshold / n_assigned (NaN when nothing was assigned);
    'unmatched_a', 'unmatched_b': boxes of each annotator in no matched pair;
    'mean_iou': mean IoU of the matched pairs, each pair weighted equally (NaN when none);
    'agreement': F1 of the matches, 2 * n_matched / (n_a + n_b); 1.0 when neither drew any box;
    'per_image': one dict per image with the same counts, 'mean_iou', 'agreement' and
      'below_threshold_share', plus 'pairs' int64 [k, 2] (index in boxes_a[i], index in boxes_b[i]) of
      the assigned pairs in order of the first index, their 'ious' float32 [k] and 'matched' bool [k].
  """
  if len(boxes_a) != len(boxes_b):
    raise ValueError(f"boxes_a covers {len(boxes_a)} images but boxes_b covers {len(boxes_b)}")
  if not 0 < iou_threshold <= 1:
    raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
  if (labels_a is None) != (labels_b is None):
    raise ValueError("give labels for both annotators or for neither")
  boxes_a = [_as_boxes(boxes, "boxes_a", i) for i, boxes in enumerate(boxes_a)]
  boxes_b = [_as_boxes(boxes, "boxes_b", i) for i, boxes in enumerate(boxes_b)]
  if labels_a is None:
    labels_a = labels_b = [None] * len(boxes_a)
  else:
    if len(labels_a) != len(boxes_a) or len(labels_b) != len(boxes_b):
      raise ValueError("labels_a and labels_b must have one entry per image, like the boxes")
    labels_a = [np.asarray(labels).reshape(-1) for labels in labels_a]
    labels_b = [np.asarray(labels).reshape(-1) for labels in labels_b]
    for name, labels, boxes in (("labels_a", labels_a, boxes_a), ("labels_b", labels_b, boxes_b)):
      for i, (lab, box) in enumerate(zip(labels, boxes)):
        if len(lab) != len(box):
          raise ValueError(f"{name}[{i}] has {len(lab)} labels for {len(box)} boxes")

  per_image = [
    _image_result(iou, la, lb, iou_threshold)
    for iou, la, lb in zip(_iou_matrices(boxes_a, boxes_b), labels_a, labels_b)
  ]
  total = {
    key: sum(r[key] for r in per_image) for key in ("n_a", "n_b", "n_assigned", "n_matched", "n_below_threshold")
  }
  matched_ious = np.concatenate([np.zeros(0, np.float32)] + [r["ious"][r["matched"]] for r in per_image])
  return {
    "n_images": len(per_image),
    **total,
    "below_threshold_share": _share(total["n_below_threshold"], total["n_assigned"]),
    "unmatched_a": total["n_a"] - total["n_matched"],
    "unmatched_b": total["n_b"] - total["n_matched"],
    "mean_iou": _mean(matched_ious),
    "agreement": _f1(total["n_matched"], total["n_a"], total["n_b"]),
    "per_image": per_image,
  }


# --- 3D boxes to 2D ----------------------------------------------------------------------------------

# Corner k of a box in its own frame, as signs of the half extents along (x, y, z) = (length, height,
# width). y points down, so corners 0-3 are the bottom face (y = +h/2), going round it, and corner
# k + 4 is the top corner above corner k.
_CORNER_SIGNS = np.array(
  [[1, 1, 1], [1, 1, -1], [-1, 1, -1], [-1, 1, 1], [1, -1, 1], [1, -1, -1], [-1, -1, -1], [-1, -1, 1]],
  np.float32,
)
# The 12 edges: bottom ring, top ring, verticals.
_EDGES = np.array([[0, 1], [1, 2], [2, 3], [3, 0], [4, 5], [5, 6], [6, 7], [7, 4], [0, 4], [1, 5], [2, 6], [3, 7]])


def box3d_corners(center: jax.Array, size: jax.Array, yaw: jax.Array) -> jax.Array:
  """The 8 corners [8, 3] of a 3D box, in the frame its centre is given in (order: see _CORNER_SIGNS).

  center (x, y, z) is the box's geometric centre (KITTI labels give the bottom centre instead: add
  h/2 to their y). size (l, w, h): at yaw 0, the length runs along x, the height along y (down) and
  the width along z. yaw rotates about y as KITTI's rotation_y does, R = [[cos, 0, sin], [0, 1, 0],
  [-sin, 0, cos]]: the box's front (+x) turns to (cos yaw, 0, -sin yaw), so yaw = -pi/2 faces +z,
  straight ahead of a camera with identity extrinsics.
  """
  center, size, yaw = jnp.asarray(center), jnp.asarray(size), jnp.asarray(yaw)
  cos, sin = jnp.cos(yaw), jnp.sin(yaw)
  zero, one = jnp.zeros_like(cos), jnp.ones_like(cos)
  rotation = jnp.stack([jnp.stack([cos, zero, sin]), jnp.stack([zero, one, zero]), jnp.stack([-sin, zero, cos])])
  half = jnp.stack([size[0], size[2], size[1]]) / 2
  return (_CORNER_SIGNS * half) @ rotation.T + center


@functools.partial(jax.jit, static_argnames=("near",))
def project_box3d(
  center: jax.Array,
  size: jax.Array,
  yaw: jax.Array,
  intrinsics: jax.Array,
  extrinsics: jax.Array,
  image_size: tuple[float, float] | None = None,
  near: float = 1e-2,
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """The 2D box that one 3D box covers in a pinhole camera: (box [4], corners_2d [8, 2], visible []).

  center [3], size [3] (l, w, h), yaw []: the box in world coordinates (conventions: `box3d_corners`).
  extrinsics [4, 4] (or [3, 4]): world -> camera, p_cam = R @ p_world + t with [R | t] its top rows.
  intrinsics [3, 3]: K, so (u, v) = (K p_cam)[:2] / (K p_cam)[2]. Camera axes are x right, y down, z
  forward (KITTI / OpenCV). image_size (width, height), optional: clip the box to [0, W] x [0, H].
  near: the near plane, in the extrinsics' units (static: each value compiles once).

  Behind the camera: only the part of the box with z_cam >= near is projected. Where the box crosses
  the near plane, the 2D box encloses the projections of its corners in front of the plane *and* of
  the points where its edges cross the plane; the box being convex, that is exactly the image of its
  visible part. Dropping the corners behind instead would shrink the box, and projecting them anyway
  (z < 0 flips the image) would put it in the wrong place. A box straddling the plane reaches far
  out of the image (towards infinity as near -> 0): pass image_size to clip it.

  Returns:
    box (x_min, y_min, x_max, y_max), in the module's 2D convention; all zeros when not visible (a
      zero-area box, which `box_iou` scores 0 against anything);
    corners_2d: the 8 corners projected, NaN for corners with z_cam < near (no valid projection);
    visible: some of the box is in front of the near plane and, when image_size is given, the clipped
      box has positive area.

  A single box: for many, vmap with the camera closed over or given in_axes=None, e.g.
  `jax.vmap(lambda c, s, y: project_box3d(c, s, y, K, E))(centers, sizes, yaws)`.
  """
  if not near > 0:  # near is static (a compile-time constant), so this is a plain Python check
    raise ValueError(f"near must be positive, got {near}")
  intrinsics = jnp.asarray(intrinsics)
  extrinsics = jnp.asarray(extrinsics)
  corners = box3d_corners(center, size, yaw)
  corners = corners @ extrinsics[:3, :3].T + extrinsics[:3, 3]

  # Where an edge crosses the near plane: p + t (q - p) with t = (near - z_p) / (z_q - z_p).
  p, q = corners[_EDGES[:, 0]], corners[_EDGES[:, 1]]
  dp, dq = p[:, 2] - near, q[:, 2] - near
  crosses = dp * dq < 0
  t = dp / jnp.where(crosses, dp - dq, 1)
  points = jnp.concatenate([corners, p + t[:, None] * (q - p)])
  in_front = jnp.concatenate([corners[:, 2] >= near, crosses])

  homogeneous = points @ intrinsics.T
  depth = jnp.where(in_front, homogeneous[:, 2], 1)  # masked before dividing: finite values and gradients
  uv = homogeneous[:, :2] / depth[:, None]
  corners_2d = jnp.where(in_front[:8, None], uv[:8], jnp.nan)

  low = jnp.min(jnp.where(in_front[:, None], uv, jnp.inf), axis=0)
  high = jnp.max(jnp.where(in_front[:, None], uv, -jnp.inf), axis=0)
  box = jnp.concatenate([low, high])
  visible = jnp.any(in_front)
  if image_size is not None:
    width, height = image_size
    limit = jnp.stack([width, height, width, height]).astype(box.dtype)
    box = jnp.clip(box, 0, limit)
    visible = visible & (box[2] > box[0]) & (box[3] > box[1])
  box = jnp.where(visible, box, 0)
  return box, corners_2d, visible
