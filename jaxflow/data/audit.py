"""Dataset audit: what in the data itself can make a test score lie, found before any model is trained.

Five checks on plain numpy splits, each a section of one JSON-serializable report (`audit`):
class balance; exact and near duplicates (within a split, and across splits = leakage); identical
inputs with different labels (label noise); train/eval shift of input statistics and of the label
distribution (measurement bias); association of per-example metadata with the label (sample bias: the
tanks that were all photographed by day). Every section states its own definition, so a reader of
report.json or report.md never has to read this code to know what a number means. `summary.findings`
holds one sentence per flagged problem. `jaxflow.data.audit_report.write_report` writes it out.

Near duplicates scale to ~20k x 3072 examples without an n^2 x d product: a Gaussian random projection
to `projection_dims` dimensions proposes candidate pairs, and each candidate is then checked exactly
in the original space (see `_near_duplicates`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
from collections.abc import Iterator

import numpy as np
from scipy import stats
from sklearn.metrics import mutual_info_score

# Candidate pairs checked per near-duplicate comparison before giving up (the report then says
# `truncated`): only data made of one huge cluster of near-identical inputs gets there.
_MAX_CANDIDATES = 5_000_000
# Bytes of float64 distance block per chunk of the pairwise searches.
_BLOCK_BYTES = 64 * 2**20
_HIST_BINS = 30
_TOP_SHIFTED = 10


@dataclasses.dataclass(frozen=True)
class AuditSplit:
  """One split as arrays; `metadata` maps an attribute name to one value per example."""

  inputs: np.ndarray  # float32 [n, ...]: images [n, h, w, c] (or [n, h, w]) or feature vectors [n, d]
  labels: np.ndarray  # int [n]
  metadata: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class AuditThresholds:
  """When a check raises a finding, and the knobs that decide what the checks look at."""

  imbalance_ratio: float = 3.0  # flag max/min nonzero class count above this
  near_duplicate_ratio: float = 0.1  # near duplicate: L2 <= this x median nearest-neighbour distance
  shift_p_value: float = 0.01  # shift flags need p below this ...
  shift_min_ks: float = 0.1  # ... and a KS statistic (max CDF gap) of at least this
  label_shift_min_tvd: float = 0.1  # ... or, for labels, a total variation distance of at least this
  cramers_v: float = 0.3  # flag attributes whose bias-corrected Cramér's V with the label is >= this
  quantile_bins: int = 5  # numeric attributes with more distinct values than max_categories are binned
  max_categories: int = 10
  max_examples: int = 20  # example groups / pairs listed per comparison
  nn_sample: int = 512  # examples whose exact nearest-neighbour distance sets the near-duplicate scale
  projection_dims: int = 32
  seed: int = 0  # of the sample and the projection: the same data always gives the same report


def audit(
  splits: dict[str, AuditSplit],
  *,
  num_classes: int,
  class_names: list[str] | None = None,
  train_split: str = "train",
  eval_split: str | None = "test",
  thresholds: AuditThresholds = AuditThresholds(),
) -> dict:
  """The audit report of `splits` (see the module docstring); `eval_split` None skips the shift test.

  Splits are compared pairwise for duplicates and conflicting labels (every pair: a validation split
  can leak as well as a test split); input and label shift compare `train_split` with `eval_split`.
  """
  names = _check_inputs(splits, num_classes, class_names, train_split, eval_split)
  order = [train_split] + [s for s in splits if s != train_split]
  splits = {s: splits[s] for s in order}
  flats = {s: _flat(sp.inputs) for s, sp in splits.items()}
  _check_finite(flats)
  labels = {s: np.asarray(sp.labels).astype(np.int64) for s, sp in splits.items()}
  ids = _input_ids(flats)
  t = thresholds
  report = {
    "meta": _meta(splits, names, train_split, eval_split, t),
    "class_balance": _class_balance(labels, num_classes, t.imbalance_ratio),
    "duplicates": _duplicates(flats, labels, ids, t),
    "conflicting_labels": _conflicting_labels(labels, ids, t.max_examples),
    "shift": _shift(splits, labels, num_classes, train_split, eval_split, t),
    "attribute_bias": _attribute_bias(splits, labels, num_classes, t),
  }
  report["summary"] = _summary(report, names, t)
  return report


# ----------------------------------------------------------------------------------------------- input


def _check_inputs(splits, num_classes, class_names, train_split, eval_split) -> list[str]:
  """Class names to print; raises ValueError on inputs no section could make sense of."""
  if not splits:
    raise ValueError("audit needs at least one split")
  for name in (train_split, eval_split):
    if name is not None and name not in splits:
      raise ValueError(f"split {name!r} is not among the splits given: {sorted(splits)}")
  if class_names is not None and len(class_names) != num_classes:
    raise ValueError(f"class_names has {len(class_names)} names for num_classes={num_classes}")
  shapes = {s: tuple(sp.inputs.shape[1:]) for s, sp in splits.items()}
  if len(set(shapes.values())) > 1:
    raise ValueError(f"splits have different example shapes: {shapes}")
  for s, sp in splits.items():
    n = sp.inputs.shape[0]
    if n == 0 or np.ndim(sp.labels) != 1 or len(sp.labels) != n:
      raise ValueError(
        f"split {s!r}: need n > 0 inputs and labels of shape [n], got {sp.inputs.shape} and {np.shape(sp.labels)}"
      )
    for key, values in sp.metadata.items():
      if np.shape(values) != (n,):
        raise ValueError(
          f"split {s!r}: metadata {key!r} has shape {np.shape(values)}, need one value per example: ({n},)"
        )
  return list(class_names) if class_names is not None else [str(c) for c in range(num_classes)]


def _check_finite(flats: dict[str, np.ndarray]) -> None:
  """NaN or inf would poison every statistic (and strict JSON): refuse them, naming the examples."""
  for s, x in flats.items():
    bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
    if bad.size:
      raise ValueError(f"split {s!r}: {bad.size} examples have NaN or infinite inputs, e.g. indices {bad[:5].tolist()}")


def _flat(inputs: np.ndarray) -> np.ndarray:
  return np.ascontiguousarray(np.asarray(inputs, np.float32).reshape(inputs.shape[0], -1))


def _input_ids(flats: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """One int per example, equal exactly when two examples (of any splits) have the same float32 bytes.

  Bytes are hashed (BLAKE2b, 128 bits: a collision is never going to happen) rather than compared, so
  grouping is one pass whatever n is.
  """
  digests = {s: [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in x] for s, x in flats.items()}
  index: dict[bytes, int] = {}
  return {s: np.array([index.setdefault(d, len(index)) for d in ds], np.int64) for s, ds in digests.items()}


def _meta(splits, names, train_split, eval_split, t) -> dict:
  return {
    "num_classes": len(names),
    "class_names": names,
    "train_split": train_split,
    "eval_split": eval_split,
    "splits": {
      s: {
        "num_examples": int(sp.inputs.shape[0]),
        "example_shape": list(sp.inputs.shape[1:]),
        "metadata": sorted(sp.metadata),
      }
      for s, sp in splits.items()
    },
    "thresholds": dataclasses.asdict(t),
  }


def _split_pairs(names: list[str]) -> list[tuple[str, str]]:
  """Every unordered pair, in split order: the train split (first) is always `a` of its pairs."""
  return [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]


# -------------------------------------------------------------------------------------- class balance


def _class_balance(labels: dict[str, np.ndarray], num_classes: int, max_ratio: float) -> dict:
  return {
    "definition": (
      f"imbalance ratio = largest class count / smallest nonzero class count; flagged above {max_ratio:g}. "
      "Classes with no examples are listed separately (they do not enter the ratio)."
    ),
    "splits": {s: _balance(y, num_classes, max_ratio) for s, y in labels.items()},
  }


def _balance(y: np.ndarray, num_classes: int, max_ratio: float) -> dict:
  valid = (y >= 0) & (y < num_classes)
  counts = np.bincount(y[valid], minlength=num_classes)
  nonzero = counts[counts > 0]
  ratio = float(nonzero.max() / nonzero.min()) if nonzero.size else None
  return {
    "counts": counts.tolist(),
    "fractions": (counts / max(int(counts.sum()), 1)).tolist(),
    "imbalance_ratio": ratio,
    "largest_class": int(np.argmax(counts)),
    "smallest_nonzero_class": int(np.flatnonzero(counts == nonzero.min())[0]) if nonzero.size else None,
    "empty_classes": np.flatnonzero(counts == 0).tolist(),
    "num_out_of_range_labels": int((~valid).sum()),
    "flagged": bool(ratio is not None and ratio > max_ratio),
  }


# ----------------------------------------------------------------------------------------- duplicates


def _duplicates(flats, labels, ids, t: AuditThresholds) -> dict:
  typical = _typical_nn_distance(flats, ids, t.nn_sample, t.seed)
  radius = t.near_duplicate_ratio * typical
  dims = flats[next(iter(flats))].shape[1]
  projected = dims > 2 * t.projection_dims
  coords = _search_coords(flats, t.projection_dims if projected else None, t.seed)
  pairs = _split_pairs(list(flats))
  near = functools.partial(_near_duplicates, flats, coords, labels, ids, radius=radius, max_examples=t.max_examples)
  return {
    "definition": {
      "exact": "identical float32 bytes of the whole example (BLAKE2b-128 hash of each example's bytes).",
      "near": (
        f"not exact duplicates, and L2 distance of the flattened inputs <= {t.near_duplicate_ratio:g} x the "
        f"typical nearest-neighbour distance (median, over {min(t.nn_sample, sum(len(x) for x in flats.values()))} "
        "sampled examples, of the exact L2 distance to the closest non-identical example of any split). "
        + (
          f"Candidates: pairs within 2x that radius after a Gaussian random projection to "
          f"{t.projection_dims} dims (misses a given true pair with probability {stats.chi2.sf(4.0 * t.projection_dims, t.projection_dims):.1g}), "
          "each then checked exactly."
          if projected
          else "Searched exactly (inputs have few dimensions)."
        )
      ),
    },
    "typical_nn_distance": typical,
    "near_radius": radius,
    "projection_dims": t.projection_dims if projected else None,
    "exact": {
      "within": {s: _exact_within(ids[s], labels[s], t.max_examples) for s in flats},
      "across": {f"{a}/{b}": _exact_across(ids, labels, a, b, t.max_examples) for a, b in pairs},
    },
    "near": {
      "within": {s: near(s, s) for s in flats},
      "across": {f"{a}/{b}": near(a, b) for a, b in pairs},
    },
  }


def _groups(ids: np.ndarray) -> list[np.ndarray]:
  """Indices sharing an id, groups of two or more, each ascending, ordered by their first index."""
  order = np.argsort(ids, kind="stable")
  cuts = np.flatnonzero(np.diff(ids[order])) + 1
  groups = [g for g in np.split(order, cuts) if len(g) > 1]
  return sorted(groups, key=lambda g: g[0])


def _exact_within(ids: np.ndarray, y: np.ndarray, max_examples: int) -> dict:
  groups = _groups(ids)
  return {
    "num_groups": len(groups),
    "num_examples_in_groups": int(sum(len(g) for g in groups)),
    "num_redundant_copies": int(sum(len(g) - 1 for g in groups)),
    "groups": [{"indices": g.tolist(), "labels": y[g].tolist()} for g in groups[:max_examples]],
  }


def _shared(ids_a: np.ndarray, ids_b: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
  """id -> (indices in a, indices in b) for every input present in both, ordered by first index in b."""
  common = np.intersect1d(ids_a, ids_b)
  in_a, in_b = _index_of(ids_a, common), _index_of(ids_b, common)
  return {i: (in_a[i], in_b[i]) for i in sorted(in_b, key=lambda i: in_b[i][0])}


def _index_of(ids: np.ndarray, wanted: np.ndarray) -> dict[int, np.ndarray]:
  """id -> its ascending indices in `ids`, for the ids in `wanted`."""
  keep = np.flatnonzero(np.isin(ids, wanted))
  order = keep[np.argsort(ids[keep], kind="stable")]
  cuts = np.flatnonzero(np.diff(ids[order])) + 1
  return {int(ids[g[0]]): g for g in np.split(order, cuts) if len(g)}


def _exact_across(ids, labels, a: str, b: str, max_examples: int) -> dict:
  shared = _shared(ids[a], ids[b])
  pairs = [(i, j) for ia, ib in shared.values() for j in ib for i in ia]
  n_b_in_a = int(sum(len(ib) for _, ib in shared.values()))
  return {
    "split_a": a,
    "split_b": b,
    "num_pairs": len(pairs),
    "num_b_in_a": n_b_in_a,
    "fraction_b_in_a": n_b_in_a / len(ids[b]),
    "num_a_in_b": int(sum(len(ia) for ia, _ in shared.values())),
    "pairs": [
      {"index_a": int(i), "index_b": int(j), "label_a": int(labels[a][i]), "label_b": int(labels[b][j])}
      for i, j in pairs[:max_examples]
    ],
  }


def _typical_nn_distance(flats, ids, sample: int, seed: int) -> float:
  """Median exact L2 distance from sampled examples to their closest non-identical example (any split).

  The scale near duplicates are measured against: a fixed radius would mean different things for pixels
  in [0, 1] and in [0, 255]. Identical copies are skipped so that duplicates can't shrink the scale.
  """
  owners = np.concatenate([np.full(len(x), k) for k, x in enumerate(flats.values())])
  rows = np.concatenate([np.arange(len(x)) for x in flats.values()])
  pick = np.sort(np.random.default_rng(seed).choice(len(rows), size=min(sample, len(rows)), replace=False))
  data = list(flats.values())
  id_list = list(ids.values())
  center = _mean_row(data)
  queries = np.stack([data[owners[p]][rows[p]] for p in pick]) - center
  query_ids = np.array([id_list[owners[p]][rows[p]] for p in pick])
  best = np.full(len(pick), np.inf)
  for x, x_ids in zip(data, id_list):
    for start, d2 in _sq_distance_blocks(queries, x, center):
      d2[query_ids[:, None] == x_ids[None, start : start + d2.shape[1]]] = np.inf
      best = np.minimum(best, d2.min(axis=1))
  best = best[np.isfinite(best)]
  return float(np.median(np.sqrt(best))) if best.size else 0.0


def _mean_row(data: list[np.ndarray]) -> np.ndarray:
  total = sum(x.sum(axis=0, dtype=np.float64) for x in data)
  return (total / sum(len(x) for x in data)).astype(np.float32)


def _sq_distance_blocks(q: np.ndarray, x: np.ndarray, center: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
  """(column start, squared distances of all of `q` to a block of rows of `x` - center)."""
  q_sq = np.einsum("ij,ij->i", q, q, dtype=np.float64)
  step = max(1, _BLOCK_BYTES // (8 * max(len(q), x.shape[1], 1)))  # bounds both d2 and the centered block
  for start in range(0, len(x), step):
    block = x[start : start + step] - center
    d2 = q_sq[:, None] + np.einsum("ij,ij->i", block, block, dtype=np.float64)[None, :] - 2.0 * (q @ block.T)
    yield start, np.maximum(d2, 0.0)


def _search_coords(flats, dims: int | None, seed: int) -> dict[str, np.ndarray]:
  """float64 centered coordinates the candidate search runs on: projected to `dims`, or as they are.

  Projecting a difference with a Gaussian matrix scaled by 1/sqrt(dims) multiplies its squared norm by
  chi2(dims)/dims, which for 32 dims exceeds 4 with probability 2e-13: searching within 2x the radius
  misses no true pair in practice, and the exact check throws out the (rare) false candidates.
  """
  center = _mean_row(list(flats.values())).astype(np.float64)
  if dims is None:
    return {s: x.astype(np.float64) - center for s, x in flats.items()}
  d = len(center)
  proj = np.random.default_rng(seed).standard_normal((d, dims)).astype(np.float32) / np.float32(math.sqrt(dims))
  shift = center.astype(np.float32) @ proj
  return {s: (x @ proj - shift).astype(np.float64) for s, x in flats.items()}


def _candidate_pairs(
  ca: np.ndarray, cb: np.ndarray, radius: float, same: bool
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
  """Index pairs (i in a, j in b) closer than `radius` in search coordinates; i < j when a is b."""
  b_sq = np.einsum("ij,ij->i", cb, cb)
  step = max(1, _BLOCK_BYTES // (8 * max(len(cb), 1)))
  for start in range(0, len(ca), step):
    block = ca[start : start + step]
    first = start if same else 0  # within a split only the upper triangle: j >= start
    d2 = np.einsum("ij,ij->i", block, block)[:, None] + b_sq[None, first:] - 2.0 * (block @ cb[first:].T)
    i, j = np.nonzero(d2 <= radius**2)
    i, j = i + start, j + first
    keep = j > i if same else slice(None)
    yield i[keep], j[keep]


def _pair_distances(xa: np.ndarray, xb: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
  """Exact L2 distances of the pairs, from differences (no cancellation), in batches to bound memory."""
  out = np.empty(len(i))
  step = max(1, 2**22 // max(xa.shape[1], 1))
  for s in range(0, len(i), step):
    diff = xa[i[s : s + step]].astype(np.float64) - xb[j[s : s + step]]
    out[s : s + step] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
  return out


def _near_duplicates(flats, coords, labels, ids, a: str, b: str, radius: float, max_examples: int) -> dict:
  """Near-duplicate pairs between splits a and b (within one split when a == b)."""
  found, checked, truncated = [], 0, False
  if radius > 0:
    for i, j in _candidate_pairs(coords[a], coords[b], 2.0 * radius, a == b):
      distinct = ids[a][i] != ids[b][j]  # exact duplicates are reported as such, not again here
      i, j = i[distinct], j[distinct]
      dist = _pair_distances(flats[a], flats[b], i, j)
      close = dist <= radius
      found.append((i[close], j[close], dist[close]))
      checked += len(i)
      if checked > _MAX_CANDIDATES:
        truncated = True
        break
  i, j, dist = (
    (np.concatenate(parts) for parts in zip(*found)) if found else (np.zeros(0, int), np.zeros(0, int), np.zeros(0))
  )
  order = np.lexsort((j, i))
  i, j, dist = i[order], j[order], dist[order]
  ya, yb = labels[a][i], labels[b][j]
  out = {"split_a": a, "split_b": b, "num_pairs": int(len(i))}
  if a == b:
    out["num_examples"] = int(len(np.union1d(i, j)))
  else:
    out["num_b_near_a"] = int(len(np.unique(j)))
    out["num_a_near_b"] = int(len(np.unique(i)))
  out["num_label_disagreements"] = int((ya != yb).sum())
  out["truncated"] = truncated
  out["pairs"] = [
    {"index_a": int(p), "index_b": int(q), "distance": float(d), "label_a": int(la), "label_b": int(lb)}
    for p, q, d, la, lb in list(zip(i, j, dist, ya, yb))[:max_examples]
  ]
  return out


# ---------------------------------------------------------------------------------- conflicting labels


def _conflicting_labels(labels, ids, max_examples: int) -> dict:
  return {
    "definition": (
      "groups of exact-duplicate inputs (identical bytes) whose labels are not all equal; across two "
      "splits: an input present in both whose labels, pooled over both splits, are not all equal."
    ),
    "within": {s: _conflicts_within(ids[s], labels[s], max_examples) for s in labels},
    "across": {f"{a}/{b}": _conflicts_across(ids, labels, a, b, max_examples) for a, b in _split_pairs(list(labels))},
  }


def _conflicts_within(ids: np.ndarray, y: np.ndarray, max_examples: int) -> dict:
  groups = [g for g in _groups(ids) if len(np.unique(y[g])) > 1]
  return {
    "num_groups": len(groups),
    "num_examples": int(sum(len(g) for g in groups)),
    "groups": [{"indices": g.tolist(), "labels": y[g].tolist()} for g in groups[:max_examples]],
  }


def _conflicts_across(ids, labels, a: str, b: str, max_examples: int) -> dict:
  ya, yb = labels[a], labels[b]
  groups = [
    (ia, ib) for ia, ib in _shared(ids[a], ids[b]).values() if len(np.unique(np.concatenate([ya[ia], yb[ib]]))) > 1
  ]
  return {
    "split_a": a,
    "split_b": b,
    "num_groups": len(groups),
    "groups": [
      {"indices_a": ia.tolist(), "labels_a": ya[ia].tolist(), "indices_b": ib.tolist(), "labels_b": yb[ib].tolist()}
      for ia, ib in groups[:max_examples]
    ],
  }


# --------------------------------------------------------------------------------------------- shift


def _shift(splits, labels, num_classes: int, train: str, eval_: str | None, t: AuditThresholds) -> dict:
  example_means = {s: _flat_mean(sp.inputs) for s, sp in splits.items()}
  per_split = {s: _input_stats(sp.inputs, example_means[s]) for s, sp in splits.items()}
  compare = eval_ is not None and eval_ != train
  return {
    "definition": (
      "per-example mean = mean of all values of one example. Input shift: two-sample Kolmogorov-Smirnov "
      f"test of the per-example means of '{train}' vs the eval split, flagged when p < {t.shift_p_value:g} and "
      f"the KS statistic D (largest gap between the two CDFs, the effect size) >= {t.shift_min_ks:g}; Cohen's d "
      "(mean difference / sqrt of the average of the two variances) is shown too. Label shift: chi-square "
      f"test of homogeneity of the class counts, flagged when p < {t.shift_p_value:g} and the total variation "
      f"distance between the label distributions >= {t.label_shift_min_tvd:g}."
    ),
    "splits": per_split,
    "histogram": _histogram(example_means),
    "input_shift": _input_shift(per_split, example_means, train, eval_, t) if compare else None,
    "label_shift": _label_shift(labels, train, eval_, num_classes, t) if compare else None,
  }


def _flat_mean(inputs: np.ndarray) -> np.ndarray:
  return np.asarray(inputs).reshape(inputs.shape[0], -1).mean(axis=1, dtype=np.float64)


def _axis_view(inputs: np.ndarray) -> tuple[str, np.ndarray]:
  """[n, positions, k]: k channels of an image ([n, h, w, c]; [n, h, w] is one channel) or k features."""
  x = np.asarray(inputs)
  n = x.shape[0]
  if x.ndim <= 2:
    return "feature", x.reshape(n, 1, -1)
  channels = x.shape[-1] if x.ndim >= 4 else 1
  return "channel", x.reshape(n, -1, channels)


def _input_stats(inputs: np.ndarray, example_mean: np.ndarray) -> dict:
  """Mean and std overall and per channel/feature, accumulated in float64 over row blocks (no full copy)."""
  axis, x = _axis_view(inputs)
  total, total_sq = np.zeros(x.shape[2]), np.zeros(x.shape[2])
  step = max(1, 2**22 // max(x.shape[1] * x.shape[2], 1))
  for s in range(0, x.shape[0], step):
    block = x[s : s + step].astype(np.float64)
    total += block.sum(axis=(0, 1))
    total_sq += np.square(block).sum(axis=(0, 1))
  count = x.shape[0] * x.shape[1]
  mean = total / count
  var = np.maximum(total_sq / count - mean**2, 0.0)
  overall_mean = float(mean.mean())
  overall_var = max(float(total_sq.sum() / (count * x.shape[2]) - overall_mean**2), 0.0)
  return {
    "mean": overall_mean,
    "std": math.sqrt(overall_var),
    "axis": axis,
    f"{axis}_mean": mean.tolist(),
    f"{axis}_std": np.sqrt(var).tolist(),
    "example_mean": _describe(example_mean),
  }


def _describe(v: np.ndarray) -> dict:
  q = np.quantile(v, [0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0])
  names = ("min", "p05", "p25", "median", "p75", "p95", "max")
  return {"mean": float(v.mean()), "std": float(v.std()), **{k: float(x) for k, x in zip(names, q)}}


def _histogram(example_means: dict[str, np.ndarray]) -> dict:
  """Counts of per-example means on shared bin edges, so report readers (and the plot) can overlay splits."""
  every = np.concatenate(list(example_means.values()))
  lo, hi = float(every.min()), float(every.max())
  edges = np.linspace(lo, hi if hi > lo else lo + 1.0, _HIST_BINS + 1)
  return {"edges": edges.tolist(), "counts": {s: np.histogram(v, edges)[0].tolist() for s, v in example_means.items()}}


def _input_shift(per_split, example_means, train: str, eval_: str, t: AuditThresholds) -> dict:
  a, b = example_means[train], example_means[eval_]
  ks = stats.ks_2samp(a, b)
  spread = math.sqrt((a.var() + b.var()) / 2)
  d = float((b.mean() - a.mean()) / spread) if spread > 0 else 0.0
  sa, sb = per_split[train], per_split[eval_]
  axis = sa["axis"]
  return {
    "split_a": train,
    "split_b": eval_,
    "ks_statistic": float(ks.statistic),
    "ks_p_value": float(ks.pvalue),
    "cohens_d": d,
    "mean_difference": float(b.mean() - a.mean()),
    "axis": axis,
    "top_shifted": _top_shifted(sa, sb, axis),
    "flagged": bool(ks.pvalue < t.shift_p_value and ks.statistic >= t.shift_min_ks),
  }


def _top_shifted(sa: dict, sb: dict, axis: str) -> list[dict]:
  """Channels/features with the largest standardized mean difference (eval - train) / pooled std."""
  ma, mb = np.array(sa[f"{axis}_mean"]), np.array(sb[f"{axis}_mean"])
  pooled = np.sqrt((np.square(sa[f"{axis}_std"]) + np.square(sb[f"{axis}_std"])) / 2)
  smd = np.divide(mb - ma, pooled, out=np.zeros_like(ma), where=pooled > 0)
  top = np.argsort(-np.abs(smd), kind="stable")[:_TOP_SHIFTED]
  return [{"index": int(k), "mean_a": float(ma[k]), "mean_b": float(mb[k]), "smd": float(smd[k])} for k in top]


def _label_shift(labels, train: str, eval_: str, num_classes: int, t: AuditThresholds) -> dict:
  ys = (labels[train], labels[eval_])
  counts = np.stack([np.bincount(y[(y >= 0) & (y < num_classes)], minlength=num_classes) for y in ys])
  p = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
  tvd = float(0.5 * np.abs(p[0] - p[1]).sum())
  table = counts[:, counts.sum(axis=0) > 0]
  if table.shape[1] > 1:
    chi2, pvalue, dof, _ = stats.chi2_contingency(table, correction=False)
  else:
    chi2, pvalue, dof = 0.0, 1.0, 0
  return {
    "split_a": train,
    "split_b": eval_,
    "chi2": float(chi2),
    "dof": int(dof),
    "p_value": float(pvalue),
    "total_variation": tvd,
    "flagged": bool(pvalue < t.shift_p_value and tvd >= t.label_shift_min_tvd),
  }


# ------------------------------------------------------------------------------------- attribute bias


def cramers_v(table: np.ndarray, *, corrected: bool = True) -> float | None:
  """Cramér's V of a contingency table; bias-corrected after Bergsma (2013) unless `corrected` is False.

  The plain V of independent data is positive and grows with the table's size relative to n (a
  50-valued attribute on 200 examples looks associated); the correction removes that expected part.
  None when undefined (fewer than two nonzero rows or columns).
  """
  table = _trim(np.asarray(table, np.float64))
  r, k = table.shape
  n = table.sum()
  if min(r, k) < 2 or n < 2:
    return None
  phi2 = _chi2(table) / n
  if not corrected:
    return math.sqrt(phi2 / (min(r, k) - 1))
  phi2 = max(0.0, phi2 - (k - 1) * (r - 1) / (n - 1))
  r_c, k_c = r - (r - 1) ** 2 / (n - 1), k - (k - 1) ** 2 / (n - 1)
  denominator = min(r_c - 1, k_c - 1)
  return math.sqrt(phi2 / denominator) if denominator > 0 else None


def _trim(table: np.ndarray) -> np.ndarray:
  """Drops all-zero rows and columns: an unseen value or class carries no evidence either way."""
  return table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]


def _chi2(table: np.ndarray) -> float:
  """Pearson's chi-square statistic, no continuity correction (Cramér's V is defined on this one)."""
  expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
  return float(np.sum((table - expected) ** 2 / expected))


def association(table: np.ndarray, threshold: float) -> dict:
  """Cramér's V (both variants), chi-square test and mutual information of one attribute x label table."""
  trimmed = _trim(np.asarray(table, np.float64))
  defined = min(trimmed.shape) >= 2
  chi2 = _chi2(trimmed) if defined else 0.0
  dof = (trimmed.shape[0] - 1) * (trimmed.shape[1] - 1) if defined else 0
  mi_bits = mutual_info_score(None, None, contingency=trimmed.astype(np.int64)) / math.log(2) if defined else 0.0
  col = trimmed.sum(axis=0) / max(trimmed.sum(), 1.0)
  label_entropy = float(-(col * np.log2(col, where=col > 0, out=np.zeros_like(col))).sum())
  v = cramers_v(trimmed)
  return {
    "n": int(trimmed.sum()),
    "cramers_v": v,
    "cramers_v_plain": cramers_v(trimmed, corrected=False),
    "chi2": chi2,
    "dof": int(dof),
    "p_value": float(stats.chi2.sf(chi2, dof)) if dof > 0 else 1.0,
    "mutual_info_bits": float(mi_bits),
    "mutual_info_fraction": float(mi_bits / label_entropy) if label_entropy > 0 else 0.0,
    "flagged": bool(v is not None and v >= threshold),
  }


def _attribute_bias(splits, labels, num_classes: int, t: AuditThresholds) -> dict:
  keys = sorted({k for sp in splits.values() for k in sp.metadata})
  return {
    "definition": (
      "attribute x label contingency table per split and for all splits pooled ('all'). Cramér's V is "
      f"bias-corrected (Bergsma 2013), flagged when >= {t.cramers_v:g}; plain V shown too. Mutual "
      "information in bits (sklearn mutual_info_score / ln 2), and as a fraction of the label's entropy. "
      "Chi-square test of independence, no continuity correction. Numeric attributes with more than "
      f"{t.max_categories} distinct values are cut into {t.quantile_bins} quantile bins (edges from all "
      "splits pooled; non-finite values get their own row)."
    ),
    "attributes": {k: _attribute(k, splits, labels, num_classes, t) for k in keys},
  }


def _attribute(key: str, splits, labels, num_classes: int, t: AuditThresholds) -> dict:
  having = [s for s, sp in splits.items() if key in sp.metadata]
  values = {s: np.asarray(splits[s].metadata[key]) for s in having}
  kind, rows, codes, edges = _encode(values, t)
  tables = {s: _table(codes[s], labels[s], len(rows), num_classes) for s in having}
  if len(having) > 1:
    tables["all"] = sum(tables.values())
  per = {s: {**association(tab, t.cramers_v), "table": tab.tolist()} for s, tab in tables.items()}
  return {
    "kind": kind,
    "values": rows,
    "bin_edges": edges,
    "splits": per,
    "flagged": any(p["flagged"] for p in per.values()),
  }


def _encode(
  values: dict[str, np.ndarray], t: AuditThresholds
) -> tuple[str, list[str], dict[str, np.ndarray], list[float] | None]:
  """(kind, row labels, per-split row codes, bin edges or None), with rows shared by all splits."""
  pooled = np.concatenate(list(values.values()))
  numeric = np.issubdtype(pooled.dtype, np.number) and not np.issubdtype(pooled.dtype, np.bool_)
  if numeric and len(np.unique(pooled)) > t.max_categories:
    return _encode_bins(values, pooled.astype(np.float64), t.quantile_bins)
  rows, inverse = np.unique(pooled.astype(str), return_inverse=True)
  return "categorical", rows.tolist(), _unpool(values, inverse.reshape(-1)), None


def _encode_bins(values, pooled: np.ndarray, bins: int):
  finite = np.isfinite(pooled)
  edges = np.unique(np.quantile(pooled[finite], np.linspace(0, 1, bins + 1)))
  codes = np.searchsorted(edges[1:-1], pooled, side="right")
  rows = [
    f"[{lo:.3g}, {hi:.3g}{']' if k == len(edges) - 2 else ')'}" for k, (lo, hi) in enumerate(zip(edges[:-1], edges[1:]))
  ]
  if not finite.all():
    codes[~finite] = len(rows)
    rows.append("non-finite")
  return "binned", rows, _unpool(values, codes), edges.tolist()


def _unpool(values: dict[str, np.ndarray], codes: np.ndarray) -> dict[str, np.ndarray]:
  cuts = np.cumsum([len(v) for v in values.values()])[:-1]
  return dict(zip(values, np.split(codes, cuts)))


def _table(codes: np.ndarray, y: np.ndarray, num_rows: int, num_classes: int) -> np.ndarray:
  valid = (y >= 0) & (y < num_classes)
  flat = codes[valid] * num_classes + y[valid]
  return np.bincount(flat, minlength=num_rows * num_classes).reshape(num_rows, num_classes)


# -------------------------------------------------------------------------------------------- summary


def _summary(report: dict, names: list[str], t: AuditThresholds) -> dict:
  findings = (
    _leak_findings(report)
    + _conflict_findings(report["conflicting_labels"])
    + _within_duplicate_findings(report["duplicates"])
    + _balance_findings(report["class_balance"], names)
    + _shift_findings(report["shift"])
    + _attribute_findings(report["attribute_bias"])
  )
  return {"num_findings": len(findings), "findings": findings}


def _count(n: int, noun: str, plural: str | None = None) -> str:
  return f"{n} {noun if n == 1 else plural or noun + 's'}"


def _leak_findings(report: dict) -> list[str]:
  out = []
  dup = report["duplicates"]
  for key, e in dup["exact"]["across"].items():
    if e["num_b_in_a"]:
      out.append(
        f"{_count(e['num_b_in_a'], repr(e['split_b']) + ' example')} ({e['fraction_b_in_a']:.1%}) exactly "
        f"copied from '{e['split_a']}': leakage between splits"
      )
    near = dup["near"]["across"][key]
    if near["num_b_near_a"]:
      out.append(
        f"{_count(near['num_b_near_a'], repr(near['split_b']) + ' example')} with a near duplicate in "
        f"'{near['split_a']}' (L2 distance <= {dup['near_radius']:.3g}): likely leakage"
      )
  return out


def _conflict_findings(conflicts: dict) -> list[str]:
  out = [
    f"split '{s}': {_count(c['num_groups'], 'group')} of identical inputs with different labels: label noise"
    for s, c in conflicts["within"].items()
    if c["num_groups"]
  ]
  return out + [
    f"{_count(c['num_groups'], 'input')} in both '{c['split_a']}' and '{c['split_b']}' with different labels: label noise"
    for c in conflicts["across"].values()
    if c["num_groups"]
  ]


def _within_duplicate_findings(dup: dict) -> list[str]:
  out = [
    f"split '{s}' holds {_count(e['num_groups'], 'group')} of exact duplicates ({_count(e['num_redundant_copies'], 'redundant copy', 'redundant copies')})"
    for s, e in dup["exact"]["within"].items()
    if e["num_groups"]
  ]
  return out + [
    f"split '{s}' holds {_count(n['num_pairs'], 'near-duplicate pair')} (L2 distance <= {dup['near_radius']:.3g})"
    for s, n in dup["near"]["within"].items()
    if n["num_pairs"]
  ]


def _balance_findings(balance: dict, names: list[str]) -> list[str]:
  out = []
  for s, b in balance["splits"].items():
    if b["flagged"]:
      out.append(
        f"split '{s}' is imbalanced: class '{names[b['largest_class']]}' has {b['imbalance_ratio']:.1f}x the "
        f"examples of class '{names[b['smallest_nonzero_class']]}'"
      )
    if b["empty_classes"]:
      out.append(f"split '{s}' has no examples of class(es) " + ", ".join(f"'{names[c]}'" for c in b["empty_classes"]))
    if b["num_out_of_range_labels"]:
      out.append(f"split '{s}' has {b['num_out_of_range_labels']} labels outside [0, {len(names)})")
  return out


def _shift_findings(shift: dict) -> list[str]:
  out = []
  x, y = shift["input_shift"], shift["label_shift"]
  if x and x["flagged"]:
    out.append(
      f"'{x['split_b']}' differs from '{x['split_a']}' in per-example mean intensity (KS D {x['ks_statistic']:.2f}, "
      f"p {x['ks_p_value']:.1e}, Cohen's d {x['cohens_d']:.2f}): measurement shift"
    )
  if y and y["flagged"]:
    out.append(
      f"the label distribution of '{y['split_b']}' differs from '{y['split_a']}' (total variation "
      f"{y['total_variation']:.2f}, chi-square p {y['p_value']:.1e})"
    )
  return out


def _attribute_findings(bias: dict) -> list[str]:
  out = []
  for key, a in bias["attributes"].items():
    if a["flagged"]:
      where = ", ".join(
        f"{p['cramers_v']:.2f} {'over all splits' if s == 'all' else 'in ' + s}"
        for s, p in a["splits"].items()
        if p["cramers_v"] is not None
      )
      out.append(f"attribute '{key}' predicts the label (Cramér's V {where}): sample bias")
  return out
