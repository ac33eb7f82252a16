"""The study's datasets: scikit-learn's 8x8 digits as another camera would measure them, and with one writing
style left out of training, written as NPZ files that jaxflow reads (`data.name=npz:PATH`).

Why one evaluation split with a group per camera: jaxflow evaluates one split per run, but reports every group
of `data.group_feature` apart (accuracy, balanced accuracy, ECE). So the test split holds the 360 clean test
images plus, for every shift and severity, the same 360 images as that camera measures them, each copy its
own group: one training run per seed measures the drop on every shift at once, from the same parameters.

The cameras (float images in [0, 1], written back as uint8, as a sensor quantizes):
- blur: a Gaussian point spread (sigma in pixels; zeros outside the image);
- contrast: (x - m) * factor + m about the image's own mean m (tf.image / dm-pix's adjust_contrast);
- offset: a brightness offset added and clipped to [0, 1] (a raised black level that saturates);
- resolution: the image measured at r x r pixels (each the area average of what it covers) and shown at 8 x 8 again.

The excluded subgroup: one way of drawing each digit. The training images of each class are clustered (k-means,
4 clusters); the cluster whose centre lies farthest from the class mean is that digit's unusual style, and
every such cluster together is the subgroup. A test image belongs to it when it is nearest to that centre
among its own class's four. Excluding it from training is a collection that never met those writers.
"""

from __future__ import annotations

import dataclasses
import functools
import os

import numpy as np

SPLIT_SEED = 0  # jaxflow/data/digits.py's split (stratified 80/20, random_state 0)
GROUP = "camera"
CLEAN_SUB, CLEAN_REST = "clean_style", "clean_rest"  # the clean test images: in the excluded style or not
CLUSTERS = 4


@dataclasses.dataclass(frozen=True)
class Shift:
  kind: str  # blur | contrast | offset | resolution
  level: float  # sigma, factor, offset or pixels per side

  @property
  def name(self) -> str:
    return f"{self.kind}_{self.level:g}"

  def apply(self, x: np.ndarray) -> np.ndarray:
    """float [n, 8, 8, 1] in [0, 1] -> the same images as this camera measures them."""
    if self.kind == "blur":
      from scipy import ndimage

      return ndimage.gaussian_filter(x, sigma=(0, self.level, self.level, 0), mode="constant")
    if self.kind == "contrast":
      mean = x.mean(axis=(1, 2, 3), keepdims=True)
      return (x - mean) * self.level + mean
    if self.kind == "offset":
      return np.clip(x + self.level, 0.0, 1.0)
    if self.kind == "resolution":
      return resample(x, int(self.level))
    raise ValueError(self.kind)


SHIFTS = tuple(
  Shift(kind, level)
  for kind, levels in (
    ("blur", (0.5, 0.8, 1.2)),
    ("contrast", (0.6, 0.4, 0.25)),
    ("offset", (0.1, 0.2, 0.35)),
    ("resolution", (6, 4, 3)),
  )
  for level in levels
)
KINDS = ("blur", "contrast", "offset", "resolution")
QUICK_SHIFTS = tuple(s for s in SHIFTS if s.name in ("blur_1.2", "offset_0.35"))  # a quick run's cameras


def tested(names) -> list[Shift]:
  """The shifts among `names` (a summary's keys, a list of camera names), in SHIFTS' order."""
  return [s for s in SHIFTS if s.name in names]


def _area_matrix(fine: int, coarse: int) -> np.ndarray:
  """[coarse, fine]: coarse pixel i averages the fine pixels it covers, each weighted by the length it covers."""
  edges = np.arange(fine + 1) * coarse / fine  # fine pixel j spans [edges[j], edges[j + 1]) in coarse units
  m = np.zeros((coarse, fine))
  for i in range(coarse):
    m[i] = np.clip(np.minimum(edges[1:], i + 1) - np.maximum(edges[:-1], i), 0, None)
  return m / m.sum(axis=1, keepdims=True)


def _linear_matrix(coarse: int, fine: int) -> np.ndarray:
  """[fine, coarse]: linear interpolation between pixel centres (half-pixel convention, edges held)."""
  pos = np.clip((np.arange(fine) + 0.5) * coarse / fine - 0.5, 0, coarse - 1)
  low = np.floor(pos).astype(int)
  high = np.minimum(low + 1, coarse - 1)
  m = np.zeros((fine, coarse))
  m[np.arange(fine), low] += 1 - (pos - low)
  m[np.arange(fine), high] += pos - low
  return m


def resample(x: np.ndarray, pixels: int) -> np.ndarray:
  """Measured at pixels x pixels (each coarse pixel the area average of the fine ones it covers, as a sensor
  integrates), then shown at the original size (linear interpolation). [n, h, w, c] float."""
  h, w = x.shape[1:3]
  down_h, down_w = _area_matrix(h, pixels), _area_matrix(w, pixels)
  up_h, up_w = _linear_matrix(pixels, h), _linear_matrix(pixels, w)
  coarse = np.einsum("ih,nhwc,jw->nijc", down_h, x, down_w)
  return np.einsum("hi,nijc,wj->nhwc", up_h, coarse, up_w).astype(np.float32)


def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """(train images, train labels, test images, test labels): float32 [n, 8, 8, 1] in [0, 1], quantized as jaxflow
  ships the digits (round(v * 255 / 16) / 255), and jaxflow's own split."""
  from sklearn.datasets import load_digits
  from sklearn.model_selection import train_test_split

  bunch = load_digits()
  images = (np.round(bunch.images * 255.0 / 16.0) / 255.0).astype(np.float32)[..., None]
  x_tr, x_te, y_tr, y_te = train_test_split(
    images, bunch.target, test_size=0.2, stratify=bunch.target, random_state=SPLIT_SEED
  )
  return x_tr, y_tr.astype(np.int64), x_te, y_te.astype(np.int64)


def style_subgroup(x_tr, y_tr, x_te, y_te) -> tuple[np.ndarray, np.ndarray]:
  """(train mask, test mask) of the excluded style: per class, the k-means cluster farthest from the class mean."""
  from sklearn.cluster import KMeans

  sub_tr, sub_te = np.zeros(len(y_tr), bool), np.zeros(len(y_te), bool)
  for c in np.unique(y_tr):
    a, b = x_tr[y_tr == c].reshape(-1, 64), x_te[y_te == c].reshape(-1, 64)
    km = KMeans(CLUSTERS, n_init=3, random_state=SPLIT_SEED).fit(a)
    odd = int(np.argmax(np.linalg.norm(km.cluster_centers_ - a.mean(axis=0), axis=1)))
    sub_tr[y_tr == c] = km.labels_ == odd
    sub_te[y_te == c] = km.predict(b) == odd
  return sub_tr, sub_te


@functools.cache
def _prepared() -> tuple[np.ndarray, ...]:
  """digits() and the style's masks, computed once a process (k-means is the costly part); callers copy."""
  x_tr, y_tr, x_te, y_te = digits()
  return (x_tr, y_tr, x_te, y_te, *style_subgroup(x_tr, y_tr, x_te, y_te))


def _quantize(x: np.ndarray) -> np.ndarray:
  return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def per_image_standardized(x: np.ndarray) -> np.ndarray:
  """(x - mean) / std of each image on its own: an input normalization that a change of offset or contrast
  (without saturation) leaves unchanged, for training and inference alike."""
  x = x.astype(np.float32)
  mean = x.mean(axis=(1, 2, 3), keepdims=True)
  std = np.maximum(x.std(axis=(1, 2, 3), keepdims=True), 1.0 / 255.0)
  return (x - mean) / std


@dataclasses.dataclass(frozen=True)
class TrainSet:
  """One training set. `keep_style`: the share of the style's training images kept (1: all; 0: excluded);
  `drop_random`: that many other images removed at random instead (the exclusion's size without its system);
  `camera_copies`: each image written again as a camera drawn at random (severities between none and the
  strongest tested); `target_sample`: that many labelled training images re-measured by every tested camera;
  `standardize`: every image (train and test) standardized on its own."""

  keep_style: float = 1.0
  drop_random: bool = False
  camera_copies: int = 0
  target_sample: int = 0
  standardize: bool = False


def _random_camera(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """Each image re-measured by one camera of a random kind at a random severity (uniform from none to the
  strongest tested), the whole range a remedy that does not know the deployment camera must cover."""
  out = x.copy()
  kinds = rng.integers(0, len(KINDS), len(x))
  for k, kind in enumerate(KINDS):
    rows = np.flatnonzero(kinds == k)
    levels = [s.level for s in SHIFTS if s.kind == kind]
    for i in rows:
      u = rng.uniform()
      if kind == "resolution":
        level = int(rng.integers(min(levels), 8))  # 3..7 pixels per side
      elif kind == "contrast":
        level = 1.0 - u * (1.0 - min(levels))
      else:
        level = u * max(levels)
      out[i] = Shift(kind, level).apply(x[i : i + 1])[0]
  return out


def _training_rows(x_tr, y_tr, sub_tr, spec: TrainSet, rng) -> np.ndarray:
  """The indices of the training images kept under `spec`."""
  style = np.flatnonzero(sub_tr)
  kept_style = rng.permutation(style)[: int(round(spec.keep_style * len(style)))]
  rest = np.flatnonzero(~sub_tr)
  if spec.drop_random:  # the style stays; as many images as the style has are removed from all of them
    rest, kept_style = np.arange(len(y_tr)), np.array([], np.int64)
    rest = np.sort(rng.permutation(rest)[: len(y_tr) - len(style)])
  return np.sort(np.concatenate([rest, kept_style]))


def build(path: str, spec: TrainSet, shifts: tuple[Shift, ...] = SHIFTS) -> dict:
  """Writes the NPZ (x, y, split, camera) of `spec`, tested on `shifts`, to `path`; returns its counts."""
  x_tr, y_tr, x_te, y_te, sub_tr, sub_te = _prepared()
  rng = np.random.default_rng(SPLIT_SEED)
  rows = _training_rows(x_tr, y_tr, sub_tr, spec, rng)
  train_x, train_y, train_g = [x_tr[rows]], [y_tr[rows]], [np.where(sub_tr[rows], CLEAN_SUB, CLEAN_REST)]
  for _ in range(spec.camera_copies):
    train_x.append(_random_camera(x_tr[rows], rng))
    train_y.append(y_tr[rows])
    train_g.append(np.full(len(rows), "random_camera"))
  if spec.target_sample:
    from sklearn.model_selection import train_test_split

    sample, _ = train_test_split(rows, train_size=spec.target_sample, stratify=y_tr[rows], random_state=SPLIT_SEED)
    for s in shifts:
      train_x.append(s.apply(x_tr[sample]))
      train_y.append(y_tr[sample])
      train_g.append(np.full(len(sample), s.name))
  test_x = [x_te, *(s.apply(x_te) for s in shifts)]
  test_g = [np.where(sub_te, CLEAN_SUB, CLEAN_REST), *(np.full(len(y_te), s.name) for s in shifts)]
  tx, ex = np.concatenate(train_x), np.concatenate(test_x)
  # One fixed shuffle of the training rows: the sampler permutes them anyway, and a prefix of the file
  # (`data.train_examples`, the quick run) then holds the same mix as the whole.
  order = rng.permutation(len(tx))
  x = np.concatenate([_quantize(tx)[order], _quantize(ex)])
  if spec.standardize:
    x = per_image_standardized(x.astype(np.float32) / 255.0)
  y = np.concatenate([np.concatenate(train_y)[order], np.tile(y_te, 1 + len(shifts))])
  group = np.concatenate([np.concatenate(train_g)[order], *test_g])
  split = np.array(["train"] * len(tx) + ["test"] * len(ex))
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  np.savez(path, x=x, y=y, split=split, camera=group)
  return {
    "train_rows": int(len(tx)),
    "train_distinct": int(len(rows)),
    "train_style": int(sub_tr[rows].sum()),
    "style_train_total": int(sub_tr.sum()),
    "test_style": int(sub_te.sum()),
    "test_rest": int((~sub_te).sum()),
    "test_per_camera": int(len(y_te)),
  }


def audit_npz(path: str, shifts: tuple[Shift, ...] = SHIFTS) -> dict[str, str]:
  """One NPZ for the audit: the clean training split and one split per camera (the clean test split too), so
  `jaxflow.audit` compares the training split with each camera's test images in turn; returns {shift: split}."""
  x_tr, y_tr, x_te, y_te = _prepared()[:4]
  names = {s.name: s.name.replace(".", "p") for s in shifts}
  parts = [(x_tr, "train"), (x_te, "clean"), *((s.apply(x_te), names[s.name]) for s in shifts)]
  x = np.concatenate([_quantize(p) for p, _ in parts])
  y = np.concatenate([y_tr] + [y_te] * (1 + len(shifts)))
  split = np.concatenate([np.full(len(p), name) for p, name in parts])
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  np.savez(path, x=x, y=y, split=split)
  return {"clean": "clean", **names}
