"""Box tools against values worked out by hand: IoU, two annotators' agreement, 3D-to-2D projection."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from jaxflow.annotations.boxes import annotator_agreement, box3d_corners, box_iou, box_iou_aligned, project_box3d

UNIT = [0.0, 0.0, 1.0, 1.0]

# --- IoU -------------------------------------------------------------------------------------------


def _iou(a, b) -> float:
  return float(box_iou(np.array([a], np.float32), np.array([b], np.float32))[0, 0])


def test_iou_of_hand_computed_pairs():
  # Unit squares offset by 0.5 in x: intersection 0.5 x 1 = 0.5, union 1 + 1 - 0.5 = 1.5 -> 1/3.
  assert _iou(UNIT, [0.5, 0.0, 1.5, 1.0]) == pytest.approx(1 / 3, abs=1e-6)
  # Offset by 0.5 in x and y: intersection 0.25, union 1.75 -> 1/7.
  assert _iou(UNIT, [0.5, 0.5, 1.5, 1.5]) == pytest.approx(1 / 7, abs=1e-6)
  assert _iou(UNIT, UNIT) == 1.0
  assert _iou(UNIT, [2.0, 2.0, 3.0, 3.0]) == 0.0  # disjoint
  assert _iou(UNIT, [1.0, 0.0, 2.0, 1.0]) == 0.0  # sharing an edge: no area in common
  # [1, 3]^2 inside [0, 4]^2: intersection = the small box's area 4, union = the big one's 16 -> 1/4.
  assert _iou([0, 0, 4, 4], [1, 1, 3, 3]) == pytest.approx(0.25)
  assert _iou([0, 0, 4, 4], [1, 1, 3, 3]) == _iou([1, 1, 3, 3], [0, 0, 4, 4])


def test_zero_area_boxes_give_zero_not_nan_and_finite_gradients():
  line, point, inverted = [1.0, 1.0, 1.0, 3.0], [2.0, 2.0, 2.0, 2.0], [3.0, 3.0, 1.0, 1.0]
  a = np.array([line, point, inverted, UNIT], np.float32)
  iou = np.asarray(box_iou(a, a))
  assert not np.isnan(iou).any()
  # Only the unit square with itself overlaps: a degenerate box matches nothing, not even itself
  # (0/0 would be NaN; the inverted box counts as empty rather than as a negative area).
  np.testing.assert_array_equal(iou, np.diag([0.0, 0.0, 0.0, 1.0]))
  assert _iou(line, [0, 0, 2, 4]) == 0.0
  grad = jax.grad(lambda boxes: box_iou(boxes, boxes).sum())(jnp.asarray(a))
  assert np.isfinite(np.asarray(grad)).all()
  np.testing.assert_array_equal(np.asarray(box_iou_aligned(a, a)), [0.0, 0.0, 0.0, 1.0])


def test_batched_shapes_broadcast_and_match_the_aligned_variant():
  rng = np.random.default_rng(0)

  def random_boxes(*shape):
    low = rng.uniform(0, 10, (*shape, 2))
    return np.concatenate([low, low + rng.uniform(0, 5, (*shape, 2))], axis=-1).astype(np.float32)

  a, b = random_boxes(2, 3, 5), random_boxes(3, 7)  # [2, 3, 5, 4] against [3, 7, 4]
  iou = np.asarray(box_iou(a, b))
  assert iou.shape == (2, 3, 5, 7)
  for i, j, n, m in np.ndindex(*iou.shape):
    assert iou[i, j, n, m] == pytest.approx(_iou(a[i, j, n], b[j, m]), abs=1e-6)
  # The aligned variant is the diagonal of the pairwise one.
  square = random_boxes(2, 5)
  other = random_boxes(2, 5)
  np.testing.assert_allclose(
    np.asarray(box_iou_aligned(square, other)),
    np.diagonal(np.asarray(box_iou(square, other)), axis1=-2, axis2=-1),
    atol=1e-7,
  )
  assert box_iou(np.zeros((0, 4)), b[0]).shape == (0, 7)
  assert box_iou_aligned(a, a).shape == (2, 3, 5)
  assert box_iou([[0, 0, 2, 2]], [[1, 0, 3, 2]]).dtype == jnp.float32  # integer boxes: float IoU (1/3)


def test_iou_works_inside_jit_and_vmap():
  a = jnp.array([UNIT, [0, 0, 4, 4]], jnp.float32)
  b = jnp.array([[0.5, 0.0, 1.5, 1.0]], jnp.float32)
  total = jax.jit(lambda x, y: box_iou(x, y).sum())(a, b)
  # 1/3 from the offset unit square; [0, 4]^2 against it: 1 / 16.
  assert float(total) == pytest.approx(1 / 3 + 1 / 16, abs=1e-6)
  mapped = jax.vmap(box_iou_aligned, in_axes=(0, None))(a, b[0])
  np.testing.assert_allclose(np.asarray(mapped), [1 / 3, 1 / 16], atol=1e-6)


# --- Annotator agreement ---------------------------------------------------------------------------


def test_identical_annotations_agree_completely():
  images = [
    np.array([[0, 0, 10, 10], [20, 20, 30, 40]], np.float32),
    np.zeros((0, 4), np.float32),  # nobody drew anything: agreement, not an error
    np.array([[5, 5, 6, 8]], np.float32),
  ]
  result = annotator_agreement(images, [b.copy() for b in images])
  assert result["n_images"] == 3 and result["n_a"] == result["n_b"] == 3
  assert result["n_matched"] == 3 and result["unmatched_a"] == result["unmatched_b"] == 0
  assert result["mean_iou"] == 1.0 and result["agreement"] == 1.0
  assert result["n_below_threshold"] == 0 and result["below_threshold_share"] == 0.0
  empty = result["per_image"][1]
  assert empty["agreement"] == 1.0 and empty["pairs"].shape == (0, 2) and np.isnan(empty["mean_iou"])
  np.testing.assert_array_equal(result["per_image"][0]["pairs"], [[0, 0], [1, 1]])


def test_a_shifted_box_below_the_threshold_is_counted():
  a = [np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)]
  # The second box shifted right by 5: intersection 5 x 10 = 50, union 100 + 100 - 50 = 150 -> 1/3.
  b = [np.array([[0, 0, 10, 10], [25, 20, 35, 30]], np.float32)]
  result = annotator_agreement(a, b, iou_threshold=0.5)
  assert result["n_assigned"] == 2 and result["n_matched"] == 1 and result["n_below_threshold"] == 1
  assert result["below_threshold_share"] == 0.5
  assert result["unmatched_a"] == 1 and result["unmatched_b"] == 1  # the pair below: one box each side
  assert result["mean_iou"] == 1.0  # of matched pairs only
  assert result["agreement"] == pytest.approx(2 * 1 / (2 + 2))
  image = result["per_image"][0]
  np.testing.assert_allclose(image["ious"], [1.0, 1 / 3], atol=1e-6)
  np.testing.assert_array_equal(image["matched"], [True, False])
  # At a threshold of 0.3 the same pair matches: mean IoU (1 + 1/3) / 2 = 2/3.
  loose = annotator_agreement(a, b, iou_threshold=0.3)
  assert loose["n_matched"] == 2 and loose["mean_iou"] == pytest.approx(2 / 3, abs=1e-6)


def test_an_extra_box_is_unmatched_and_empty_sides_work():
  shared = [[0, 0, 10, 10], [20, 20, 30, 30]]
  a = [np.array(shared + [[50, 50, 60, 60]], np.float32), np.array([[0, 0, 1, 1]], np.float32), []]
  b = [np.array(shared, np.float32), np.zeros((0, 4), np.float32), np.array([[0, 0, 1, 1]], np.float32)]
  result = annotator_agreement(a, b)
  first, only_a, only_b = result["per_image"]
  assert first["n_matched"] == 2 and first["unmatched_a"] == 1 and first["unmatched_b"] == 0
  assert first["agreement"] == pytest.approx(2 * 2 / (3 + 2))
  assert only_a["unmatched_a"] == 1 and only_a["unmatched_b"] == 0 and only_a["agreement"] == 0.0
  assert only_b["unmatched_a"] == 0 and only_b["unmatched_b"] == 1 and only_b["agreement"] == 0.0
  assert result["unmatched_a"] == 2 and result["unmatched_b"] == 1
  assert result["agreement"] == pytest.approx(2 * 2 / (4 + 3))


def test_hungarian_finds_the_assignment_greedy_misses():
  # All boxes span y in [0, 10], so IoU = overlap_x / (20 - overlap_x) for these 10-wide boxes:
  #   a0 = [0, 10]  vs b0 = [1, 11]: overlap 9 -> 9/11 = 0.818;  vs b1 = [-3, 7]: overlap 7 -> 7/13 = 0.538
  #   a1 = [4, 14]  vs b0:          overlap 7 -> 7/13 = 0.538;  vs b1:           overlap 3 -> 3/17 = 0.176
  # Greedy takes the best pair a0-b0 (0.818) first, leaving a1-b1 (0.176 < 0.5): one match.
  # Hungarian maximizes the total: a0-b1 + a1-b0 = 14/13 = 1.077 > 9/11 + 3/17 = 0.995: two matches.
  a = [np.array([[0, 0, 10, 10], [4, 0, 14, 10]], np.float32)]
  b = [np.array([[1, 0, 11, 10], [-3, 0, 7, 10]], np.float32)]
  result = annotator_agreement(a, b, iou_threshold=0.5)
  assert result["n_matched"] == 2 and result["unmatched_a"] == result["unmatched_b"] == 0
  assert result["mean_iou"] == pytest.approx(7 / 13, abs=1e-6)
  np.testing.assert_array_equal(result["per_image"][0]["pairs"], [[0, 1], [1, 0]])


def test_labels_only_pair_boxes_of_the_same_class():
  box = [0, 0, 10, 10]
  # The same box, but annotated 'car' by one and 'truck' by the other: no pair, one unmatched each.
  result = annotator_agreement([np.array([box])], [np.array([box])], labels_a=[["car"]], labels_b=[["truck"]])
  assert result["n_assigned"] == 0 and result["unmatched_a"] == result["unmatched_b"] == 1
  assert np.isnan(result["below_threshold_share"]) and np.isnan(result["mean_iou"])
  # Labels override geometry: a0 (class 1) lies exactly on b1 (class 2) but pairs with b0 (class 1),
  # IoU 1/3 (shifted by 5 of 10), so nothing matches at 0.5; a1 (class 2) overlaps b1 by 9 of 10
  # in x -> 9/11.
  a = [np.array([[0, 0, 10, 10], [1, 0, 11, 10]], np.float32)]
  b = [np.array([[5, 0, 15, 10], [0, 0, 10, 10]], np.float32)]
  labelled = annotator_agreement(a, b, labels_a=[np.array([1, 2])], labels_b=[np.array([1, 2])])
  image = labelled["per_image"][0]
  np.testing.assert_array_equal(image["pairs"], [[0, 0], [1, 1]])
  np.testing.assert_allclose(image["ious"], [1 / 3, 9 / 11], atol=1e-6)
  assert labelled["n_matched"] == 1 and labelled["n_below_threshold"] == 1
  unlabelled = annotator_agreement(a, b)  # without labels a0 takes b1 (IoU 1) and a1 takes b0 (6/14)
  np.testing.assert_array_equal(unlabelled["per_image"][0]["pairs"], [[0, 1], [1, 0]])


def test_padded_batches_match_a_per_image_reference():
  # Images of many sizes go through a few padded `box_iou` calls; each must equal the plain per-image
  # computation (numpy IoU, scipy's assignment), including images with no boxes on one side.
  rng = np.random.default_rng(1)

  def boxes(n):
    low = rng.uniform(0, 20, (n, 2))
    return np.concatenate([low, low + rng.uniform(1, 8, (n, 2))], axis=1).astype(np.float32)

  counts = [(0, 0), (0, 3), (4, 0), (1, 1), (3, 5), (9, 2), (7, 7), (17, 12), (2, 2), (5, 1)]
  a = [boxes(n) for n, _ in counts]

  # b: fresh boxes where it has more than a, else a's first boxes shifted a little (some overlap is kept).
  def shift(m):
    return np.tile(rng.normal(0, 1.5, (m, 2)), 2).astype(np.float32)

  b = [boxes(m) if m > len(x) else x[:m] + shift(m) for x, (_, m) in zip(a, counts)]
  result = annotator_agreement(a, b, iou_threshold=0.4)
  for x, y, image in zip(a, b, result["per_image"]):
    lo, hi = np.maximum(x[:, None, :2], y[None, :, :2]), np.minimum(x[:, None, 2:], y[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=-1)

    def area(z):
      return np.prod(z[:, 2:] - z[:, :2], axis=-1)

    iou = inter / (area(x)[:, None] + area(y)[None, :] - inter) if inter.size else inter
    rows, cols = linear_sum_assignment(iou, maximize=True) if iou.size else (np.zeros(0, int), np.zeros(0, int))
    reference = iou[rows, cols]
    assert image["n_matched"] == int((reference >= 0.4).sum())
    assert image["n_assigned"] == int((reference > 0).sum())
    np.testing.assert_allclose(np.sort(image["ious"]), np.sort(reference[reference > 0]), atol=1e-5)
  assert result["n_matched"] == sum(r["n_matched"] for r in result["per_image"]) > 0


def test_agreement_rejects_inconsistent_inputs():
  one = [np.array([UNIT])]
  with pytest.raises(ValueError, match="covers"):
    annotator_agreement(one, one + one)
  with pytest.raises(ValueError, match="shape"):
    annotator_agreement([np.zeros((2, 5))], one)
  with pytest.raises(ValueError, match="both"):
    annotator_agreement(one, one, labels_a=[[0]])
  with pytest.raises(ValueError, match="labels for"):
    annotator_agreement(one, one, labels_a=[[0, 1]], labels_b=[[0]])
  with pytest.raises(ValueError, match="iou_threshold"):
    annotator_agreement(one, one, iou_threshold=0.0)


# --- Projection ------------------------------------------------------------------------------------

F, CX, CY = 100.0, 50.0, 40.0
K = np.array([[F, 0, CX], [0, F, CY], [0, 0, 1]], np.float32)
IDENTITY = np.eye(4, dtype=np.float32)


def _project(center, size, yaw=0.0, extrinsics=IDENTITY, **kwargs):
  box, corners, visible = project_box3d(
    jnp.asarray(center, jnp.float32), jnp.asarray(size, jnp.float32), jnp.float32(yaw), K, extrinsics, **kwargs
  )
  return np.asarray(box), np.asarray(corners), bool(visible)


def test_a_box_straight_ahead_projects_as_computed_by_hand():
  # Centre (0, 0, 10), l = 2 along x, w = 4 along z, h = 1 along y: x in [-1, 1], y in [-0.5, 0.5],
  # z in [8, 12]. u = 100 x / z + 50 is extreme at the near face: 50 -+ 100/8 = 37.5, 62.5;
  # v = 100 y / z + 40: 40 -+ 50/8 = 33.75, 46.25.
  box, corners, visible = _project([0, 0, 10], [2, 4, 1])
  assert visible
  np.testing.assert_allclose(box, [37.5, 33.75, 62.5, 46.25], rtol=1e-6)
  # Corner 0 = (+l/2, +h/2, +w/2) = (1, 0.5, 12): (50 + 100/12, 40 + 50/12).
  np.testing.assert_allclose(corners[0], [50 + 100 / 12, 40 + 50 / 12], rtol=1e-6)
  assert np.isfinite(corners).all()


def test_yaw_of_90_degrees_swaps_the_footprint():
  # R_y(90 deg) takes the length (local x) to -z and the width (local z) to +x: x in [-2, 2], z in
  # [9, 11]. u: 50 -+ 100 * 2/9; v: 40 -+ 100 * 0.5/9.
  box, _, _ = _project([0, 0, 10], [2, 4, 1], yaw=np.pi / 2)
  np.testing.assert_allclose(box, [50 - 200 / 9, 40 - 50 / 9, 50 + 200 / 9, 40 + 50 / 9], rtol=1e-5)
  swapped, _, _ = _project([0, 0, 10], [4, 2, 1])  # the same footprint with l and w exchanged
  np.testing.assert_allclose(box, swapped, rtol=1e-5)
  # KITTI's sign: the front of the box (+x) turns to (cos, 0, -sin), so yaw = -90 deg faces +z.
  corners = np.asarray(box3d_corners(jnp.zeros(3), jnp.array([2.0, 4.0, 1.0]), jnp.float32(-np.pi / 2)))
  # cos = 0, sin = -1: R = [[0, 0, -1], [0, 1, 0], [1, 0, 0]]; the front face (corners 0, 1, 4, 5,
  # local x = +l/2 = 1) centres on (0, 0, 1), and corner 0, local (1, 0.5, 2), lands on (-2, 0.5, 1).
  np.testing.assert_allclose(corners[[0, 1, 4, 5]].mean(axis=0), [0, 0, 1], atol=1e-6)
  np.testing.assert_allclose(corners[0], [-2, 0.5, 1], atol=1e-6)


def test_a_translation_in_the_extrinsics_shifts_the_box():
  # p_cam = p_world + (1, 0, 5): the box moves to centre (1, 0, 15): x in [0, 2], z in [13, 17],
  # y in [-0.5, 0.5]. u: min 100 * 0/13 + 50 = 50 (x = 0 at any depth), max 50 + 100 * 2/13;
  # v: 40 -+ 100 * 0.5/13.
  extrinsics = IDENTITY.copy()
  extrinsics[:3, 3] = [1, 0, 5]
  box, _, visible = _project([0, 0, 10], [2, 4, 1], extrinsics=extrinsics)
  assert visible
  np.testing.assert_allclose(box, [50, 40 - 50 / 13, 50 + 200 / 13, 40 + 50 / 13], rtol=1e-5)
  moved, _, _ = _project([1, 0, 15], [2, 4, 1])
  np.testing.assert_allclose(box, moved, rtol=1e-6)
  # A 3x4 [R | t] works the same as the 4x4.
  np.testing.assert_allclose(_project([0, 0, 10], [2, 4, 1], extrinsics=extrinsics[:3])[0], box, rtol=1e-6)


def test_boxes_behind_or_across_the_camera():
  box, corners, visible = _project([0, 0, -10], [2, 4, 1])
  assert not visible and np.all(box == 0) and np.isnan(corners).all()
  # Centre (0, 0, 1), w = 4: z in [-1, 3], straddling the camera. Cut at near = 0.5, the visible part
  # is z in [0.5, 3], x in [-1, 1], y in [-0.5, 0.5]; extremes at z = 0.5: u = 50 -+ 100 * 1/0.5 =
  # -150, 250; v = 40 -+ 100 * 0.5/0.5 = -60, 140. Corners with z = -1 (1, 2, 5, 6) have no projection.
  box, corners, visible = _project([0, 0, 1], [2, 4, 1], near=0.5)
  assert visible
  np.testing.assert_allclose(box, [-150, -60, 250, 140], rtol=1e-5)
  np.testing.assert_array_equal(np.isnan(corners).any(axis=1), [False, True, True, False, False, True, True, False])
  # Clipped to a 100 x 80 image it covers the whole image.
  box, _, visible = _project([0, 0, 1], [2, 4, 1], near=0.5, image_size=(100, 80))
  assert visible
  np.testing.assert_allclose(box, [0, 0, 100, 80])
  # In front of the camera but far right of the image: not visible once clipped.
  box, _, visible = _project([100, 0, 10], [2, 4, 1], image_size=(100, 80))
  assert not visible and np.all(box == 0)
  with pytest.raises(ValueError, match="near"):
    _project([0, 0, 10], [2, 4, 1], near=0.0)


def test_projection_vmaps_over_boxes():
  centers = jnp.array([[0, 0, 10], [0, 0, 10], [0, 0, -10]], jnp.float32)
  sizes = jnp.array([[2, 4, 1], [2, 4, 1], [2, 4, 1]], jnp.float32)
  yaws = jnp.array([0, np.pi / 2, 0], jnp.float32)
  project = jax.jit(jax.vmap(lambda c, s, y: project_box3d(c, s, y, K, IDENTITY, image_size=(100, 80))))
  boxes, corners, visible = project(centers, sizes, yaws)
  assert boxes.shape == (3, 4) and corners.shape == (3, 8, 2) and visible.shape == (3,)
  np.testing.assert_array_equal(np.asarray(visible), [True, True, False])
  for i in range(3):
    single = _project(centers[i], sizes[i], yaws[i], image_size=(100, 80))[0]
    np.testing.assert_allclose(np.asarray(boxes[i]), single, rtol=1e-6)
  # The projected boxes feed straight into box_iou: the two footprints of the same box overlap.
  # Box 0: [37.5, 33.75, 62.5, 46.25] (area 25 x 12.5); box 1: [27.78, 34.44, 72.22, 45.56].
  # Intersection 25 x (45.56 - 34.44 = 100/9) -> 2500/9; union 312.5 + (400/9)(100/9) - 2500/9.
  expected = (2500 / 9) / (312.5 + 40000 / 81 - 2500 / 9)
  assert float(box_iou_aligned(boxes[0], boxes[1])) == pytest.approx(expected, rel=1e-5)


def test_the_public_projection_is_the_module_s():
  """`jaxflow.project_box3d` (what experiments/ may call) gives boxes.project_box3d's results, under vmap too."""
  import jaxflow

  intrinsics = jnp.asarray([[30.0, 0.0, 12.0], [0.0, 30.0, 12.0], [0.0, 0.0, 1.0]])
  extrinsics = jnp.eye(4)
  centers = jnp.asarray([[0.0, 0.0, 8.0], [1.0, -0.5, 10.0]])
  sizes, yaws = jnp.asarray([[2.0, 1.5, 4.0], [1.0, 1.0, 1.0]]), jnp.asarray([0.3, -0.2])
  ours = jax.vmap(jaxflow.project_box3d, in_axes=(0, 0, 0, None, None, None))(
    centers, sizes, yaws, intrinsics, extrinsics, (24.0, 24.0)
  )
  module = jax.vmap(project_box3d, in_axes=(0, 0, 0, None, None, None))(
    centers, sizes, yaws, intrinsics, extrinsics, (24.0, 24.0)
  )
  for a, b in zip(ours, module, strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert np.asarray(ours[0]).shape == (2, 4) and np.all(np.asarray(ours[2]))
