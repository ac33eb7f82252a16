"""Generated scenes: two 3-D boxes (a "car" and a "crate") in front of a pinhole camera, overlapping in the image.

Why 3-D boxes: the brief's "3-D boxes projected to 2-D" comes for free, and occlusion follows from depth. Each
object is a cuboid (centre, size, yaw) at 7-11 units in front of a camera with identity extrinsics; its 2-D
silhouette is the convex hull of its 8 projected corners (`project_box3d`), rasterized at pixel centres. The
farther object is drawn first, the nearer one over it, so the farther one is partly hidden. The crate is placed
near the car in the image (an offset of at most ~0.7 of the car's extent), so the two overlap in most scenes.

Per object and scene the truth is known: `full` (the tight pixel box of the whole silhouette, occluded part
included: the amodal box), `visible` (the tight box of its visible pixels) and `projected` (project_box3d's
continuous 2-D box of the 3-D box, clipped to the image). Boxes are (x_min, y_min, x_max, y_max) in pixels, a
pixel i covering [i, i + 1), so the tight box of pixels 3..7 is [3, 8].
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
from scipy.spatial import ConvexHull

import jaxflow

SIZE = 24  # image side, pixels
FOCAL = 30.0  # pixels
INTRINSICS = np.array([[FOCAL, 0, SIZE / 2], [0, FOCAL, SIZE / 2], [0, 0, 1]], np.float32)
EXTRINSICS = np.eye(4, dtype=np.float32)
OBJECTS = ("car", "crate")
INTENSITY = {"car": 230, "crate": 120}  # uint8 fill; the background is noise around 30
CHUNK = 256  # 3-D boxes per projection call
MIN_VISIBLE = 0.25  # a scene whose farther object shows less than this share of its pixels is drawn again


@dataclasses.dataclass
class Scenes:
  """n scenes: images uint8 [n, SIZE, SIZE, 1]; per object name, boxes float32 [n, 4] and 3-D boxes."""

  images: np.ndarray
  full: dict[str, np.ndarray]
  visible: dict[str, np.ndarray]
  projected: dict[str, np.ndarray]
  box3d: dict[str, dict[str, np.ndarray]]  # center [n, 3], size [n, 3], yaw [n]
  car_in_front: np.ndarray  # bool [n]
  overlap: np.ndarray  # bool [n]: the two silhouettes share pixels
  visible_share: np.ndarray  # float [n]: share of the farther object's pixels left visible

  def __len__(self) -> int:
    return len(self.images)


_project = jax.jit(jax.vmap(jaxflow.project_box3d, in_axes=(0, 0, 0, None, None, None)))
_PIXELS = np.stack(np.meshgrid(np.arange(SIZE) + 0.5, np.arange(SIZE) + 0.5), -1).reshape(-1, 2)  # (x, y) centres


def project(center: np.ndarray, size: np.ndarray, yaw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(2-D boxes [n, 4] clipped to the image, projected corners [n, 8, 2]) of n 3-D boxes.

  Padded to a multiple of CHUNK boxes (copies of the first), so every call shares one compiled program: the
  vmapped projection compiles once per shape, ~2 s on a loaded machine."""
  n = len(yaw)
  pad = -n % CHUNK
  args = [np.concatenate([a, np.repeat(a[:1], pad, axis=0)]) for a in (center, size, yaw)]
  boxes, corners = [], []
  for k in range(0, n + pad, CHUNK):
    b, c, _ = _project(*(a[k : k + CHUNK] for a in args), INTRINSICS, EXTRINSICS, (float(SIZE), float(SIZE)))
    boxes.append(np.asarray(b, np.float32))
    corners.append(np.asarray(c, np.float32))
  return np.concatenate(boxes)[:n], np.concatenate(corners)[:n]


def _mask(corners: np.ndarray) -> np.ndarray:
  """bool [SIZE, SIZE]: pixels whose centre lies in the convex hull of the projected corners [8, 2]."""
  hull = ConvexHull(corners.astype(np.float64))
  inside = (_PIXELS @ hull.equations[:, :2].T + hull.equations[:, 2]) <= 1e-9
  return inside.all(axis=1).reshape(SIZE, SIZE)


def tight_box(mask: np.ndarray) -> np.ndarray:
  """The tight pixel box [4] of a mask's True pixels; zeros when it has none."""
  rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
  if not len(rows):
    return np.zeros(4, np.float32)
  return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], np.float32)


def _draw_3d(rng: np.random.Generator, n: int) -> dict[str, dict[str, np.ndarray]]:
  """3-D boxes: the car anywhere in view, the crate beside it in the image, at another depth."""
  car_z = rng.uniform(7, 11, n)
  car = {
    "center": np.stack([rng.uniform(-1.6, 1.6, n) * car_z / 8, rng.uniform(-1.2, 1.2, n) * car_z / 8, car_z], -1),
    "size": np.stack([rng.uniform(2.0, 3.6, n), rng.uniform(1.4, 2.2, n), rng.uniform(1.2, 2.0, n)], -1),
    "yaw": rng.uniform(-np.pi, np.pi, n),
  }
  crate_z = np.clip(car_z + rng.choice([-1, 1], n) * rng.uniform(1.0, 3.0, n), 5.5, 13)
  # The crate's centre lands within ~1.5 units of the car's in the image plane (scaled to the crate's depth).
  offset = rng.uniform(-1.5, 1.5, (n, 2)) * (crate_z / car_z)[:, None]
  crate = {
    "center": np.concatenate([car["center"][:, :2] * (crate_z / car_z)[:, None] + offset, crate_z[:, None]], -1),
    "size": rng.uniform(1.2, 2.2, (n, 3)),
    "yaw": rng.uniform(-np.pi, np.pi, n),
  }
  return {k: {f: v.astype(np.float32) for f, v in d.items()} for k, d in (("car", car), ("crate", crate))}


def generate(n: int, seed: int) -> Scenes:
  """n scenes from `seed` (numpy's PCG64): images, the truth's boxes per object, the 3-D boxes."""
  rng = np.random.default_rng(seed)
  kept: list[dict] = []
  while len(kept) < n:
    box3d = _draw_3d(rng, 2 * (n - len(kept)) + 8)
    proj = {k: project(v["center"], v["size"], v["yaw"]) for k, v in box3d.items()}
    for i in range(len(box3d["car"]["yaw"])):
      scene = _scene(
        rng, {k: proj[k][1][i] for k in OBJECTS}, box3d["car"]["center"][i, 2] < box3d["crate"]["center"][i, 2]
      )
      if scene is None or len(kept) == n:
        continue
      scene["box3d"] = {k: {f: v[i] for f, v in box3d[k].items()} for k in OBJECTS}
      scene["projected"] = {k: proj[k][0][i] for k in OBJECTS}
      kept.append(scene)
  return Scenes(
    images=np.stack([s["image"] for s in kept]),
    full={k: np.stack([s["full"][k] for s in kept]) for k in OBJECTS},
    visible={k: np.stack([s["visible"][k] for s in kept]) for k in OBJECTS},
    projected={k: np.stack([s["projected"][k] for s in kept]) for k in OBJECTS},
    box3d={k: {f: np.stack([s["box3d"][k][f] for s in kept]) for f in ("center", "size", "yaw")} for k in OBJECTS},
    car_in_front=np.array([s["car_in_front"] for s in kept]),
    overlap=np.array([s["overlap"] for s in kept]),
    visible_share=np.array([s["visible_share"] for s in kept], np.float32),
  )


def _scene(rng: np.random.Generator, corners: dict[str, np.ndarray], car_in_front: bool) -> dict | None:
  """One scene's image and boxes, or None when an object falls outside the image or is hidden too much."""
  masks = {k: _mask(c) for k, c in corners.items()}
  if any(m.sum() < 6 or m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any() for m in masks.values()):
    return None  # cut by the image border: the full extent would be unknowable from the pixels
  near, far = ("car", "crate") if car_in_front else ("crate", "car")
  visible = {near: masks[near], far: masks[far] & ~masks[near]}
  share = visible[far].sum() / masks[far].sum()
  if share < MIN_VISIBLE:
    return None
  image = rng.normal(30, 12, (SIZE, SIZE))
  for k in (far, near):
    image[masks[k]] = INTENSITY[k] + rng.normal(0, 12, int(masks[k].sum()))
  return {
    "image": np.clip(np.round(image), 0, 255).astype(np.uint8)[..., None],
    "full": {k: tight_box(m) for k, m in masks.items()},
    "visible": {k: tight_box(m) for k, m in visible.items()},
    "car_in_front": bool(car_in_front),
    "overlap": bool((masks["car"] & masks["crate"]).any()),
    "visible_share": float(share),
  }
