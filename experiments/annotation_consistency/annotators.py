"""Simulated annotators: each boxes both objects of every scene by its own convention, with a hand's jitter.

The conventions, all answers someone might give to "what to do when objects overlap?":
- `tight`: the whole object, occluded part included (the amodal box), as tight as the pixels allow;
- `loose`: the same box with a margin of MARGIN pixels on every side (a habit of "leave some room");
- `visible`: the occluded object's visible part only (what the pixels show), the nearer one whole;
- `merged`: where the two objects overlap, one box around both, labelled as the car (no crate box);
- `3-D`: a 3-D labelling tool: the annotator places a 3-D box (depth off by ~6%, yaw by ~17 degrees, size by
  ~8%: the usual errors of monocular 3-D labels) and the 2-D box is its projection (`project_box3d`).
Every annotator clicks box edges on the pixel grid with jitter: each edge moves by round(N(0, JITTER)) pixels.

Two more label sets for the car, used to train on, built from those:
- `mixed`: each scene labelled by one of the five annotators, drawn at random (a team without a guideline);
- `tight + noise`: the tight labels plus zero-mean Gaussian noise per coordinate whose RMS equals the RMS of
  (mixed - tight) on the training scenes: as much disagreement as `mixed`, but as pure noise, without a bias.
Comparing the two is how the study asks whether inconsistent labels "act as noise".
"""

from __future__ import annotations

import numpy as np

from experiments.annotation_consistency import scenes as scenes_lib

CONVENTIONS = ("tight", "loose", "visible", "merged", "3-D")
MIXED, NOISE = "mixed", "tight + noise"
MARGIN = 1.0  # pixels, the loose annotator's room on each side
JITTER = 0.5  # pixels, the std of a hand's click before it snaps to the grid
DEPTH_ERROR, YAW_ERROR, SIZE_ERROR = 0.06, 0.3, 0.08  # relative, radians, relative


def _clip(boxes: np.ndarray) -> np.ndarray:
  """Boxes inside the image, at least one pixel wide and high."""
  b = np.clip(boxes, 0, scenes_lib.SIZE)
  b[:, 2] = np.maximum(b[:, 2], np.minimum(b[:, 0] + 1, scenes_lib.SIZE))
  b[:, 3] = np.maximum(b[:, 3], np.minimum(b[:, 1] + 1, scenes_lib.SIZE))
  return b


def _union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  return np.concatenate([np.minimum(a[:, :2], b[:, :2]), np.maximum(a[:, 2:], b[:, 2:])], axis=1)


def _projected_3d(s: scenes_lib.Scenes, name: str, rng: np.random.Generator) -> np.ndarray:
  """The 2-D boxes of 3-D labels with a labeller's errors: the whole box slides along the viewing ray
  (depth error: the image position stays, the 2-D size scales by 1/(1 + e)), yaw and size are off."""
  b = s.box3d[name]
  n = len(s)
  depth = 1 + rng.normal(0, DEPTH_ERROR, (n, 1))
  center = b["center"] * depth
  size = b["size"] * (1 + rng.normal(0, SIZE_ERROR, (n, 3)))
  yaw = b["yaw"] + rng.normal(0, YAW_ERROR, n)
  return scenes_lib.project(center.astype(np.float32), size.astype(np.float32), yaw.astype(np.float32))[0]


def _jitter(boxes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  return _clip(np.round(boxes + rng.normal(0, JITTER, boxes.shape)))


def annotate(s: scenes_lib.Scenes, convention: str, rng: np.random.Generator) -> dict[str, np.ndarray]:
  """{object: boxes [n, 4]} of one annotator; a box of NaNs where the convention draws none (merged crates)."""
  near_is_car = s.car_in_front
  out = {}
  for name in scenes_lib.OBJECTS:
    full = s.full[name]
    if convention == "tight" or convention == "merged":
      boxes = full
    elif convention == "loose":
      boxes = full + np.array([-MARGIN, -MARGIN, MARGIN, MARGIN], np.float32)
    elif convention == "visible":
      is_far = ~near_is_car if name == "car" else near_is_car
      boxes = np.where(is_far[:, None], s.visible[name], full)
    elif convention == "3-D":
      boxes = _projected_3d(s, name, rng)
    else:
      raise ValueError(f"unknown convention {convention!r}; allowed: {', '.join(CONVENTIONS)}")
    out[name] = _jitter(boxes, rng)
  if convention == "merged":
    both = _clip(np.round(_union(s.full["car"], s.full["crate"]) + rng.normal(0, JITTER, (len(s), 4))))
    out["car"] = np.where(s.overlap[:, None], both, out["car"])
    out["crate"] = np.where(s.overlap[:, None], np.nan, out["crate"])
  return out


def label_sets(s: scenes_lib.Scenes, train: np.ndarray, seed: int) -> tuple[dict, dict]:
  """(every annotator's boxes of both objects {convention: {object: [n, 4]}}, the car labels to train on
  {label set: [n, 4]}: the five conventions, `mixed` and `tight + noise`). `train` marks the training scenes,
  where the noise's size is measured."""
  rng = np.random.default_rng(seed)
  boxes = {c: annotate(s, c, rng) for c in CONVENTIONS}
  car = {c: boxes[c]["car"] for c in CONVENTIONS}
  who = rng.integers(0, len(CONVENTIONS), len(s))
  car[MIXED] = np.stack([car[c] for c in CONVENTIONS])[who, np.arange(len(s))]
  rms = np.sqrt(np.mean((car[MIXED][train] - car["tight"][train]) ** 2, axis=0))
  car[NOISE] = _clip(np.round(car["tight"] + rng.normal(0, 1, (len(s), 4)) * rms))
  return boxes, car


def consensus(car: dict[str, np.ndarray]) -> np.ndarray:
  """Per scene and coordinate, the median of the five annotators' car boxes: what a team would agree on by vote."""
  return np.median(np.stack([car[c] for c in CONVENTIONS]), axis=0)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """Elementwise IoU [n] of boxes a, b [n, 4] (x_min, y_min, x_max, y_max): the study's per-scene score."""
  inter = np.clip(np.minimum(a[:, 2:], b[:, 2:]) - np.maximum(a[:, :2], b[:, :2]), 0, None).prod(axis=1)
  area = lambda x: np.clip(x[:, 2:] - x[:, :2], 0, None).prod(axis=1)  # noqa: E731
  union = area(a) + area(b) - inter
  return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def outward(boxes: np.ndarray, truth: np.ndarray) -> np.ndarray:
  """Per box [n], how far its edges lie outside the true box's, in pixels, averaged over the four edges: + for a
  larger box, - for a smaller one. Zero-mean noise leaves it near 0; a convention moves it (loose: +MARGIN)."""
  return ((truth[:, :2] - boxes[:, :2]).sum(axis=1) + (boxes[:, 2:] - truth[:, 2:]).sum(axis=1)) / 4
