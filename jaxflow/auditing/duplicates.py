"""Exact and near duplicates within a split and across splits (leakage), and conflicting labels.

Exact duplicates are examples with the same hashed bytes (`splits.input_ids`); near duplicates come from
`near_duplicates`; conflicting labels are exact-duplicate groups whose labels disagree (label noise).
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import stats

from jaxflow.auditing.near_duplicates import near_duplicates, search_coords, typical_nn_distance
from jaxflow.auditing.splits import AuditThresholds, split_pairs


def duplicates(flats, labels, ids, t: AuditThresholds) -> dict:
  """The report's `duplicates` section: exact and near duplicates within each split and across each pair."""
  typical = typical_nn_distance(flats, ids, t.nn_sample, t.seed)
  radius = t.near_duplicate_ratio * typical
  miss = stats.chi2.sf(4.0 * t.projection_dims, t.projection_dims)  # a true pair outside 2x the radius once projected
  dims = flats[next(iter(flats))].shape[1]
  projected = dims > 2 * t.projection_dims
  coords = search_coords(flats, t.projection_dims if projected else None, t.seed)
  pairs = split_pairs(list(flats))
  near = functools.partial(near_duplicates, flats, coords, labels, ids, radius=radius, max_examples=t.max_examples)
  return {
    "definition": {
      "exact": "identical float32 bytes of the whole example (BLAKE2b-128 hash of each example's bytes).",
      "near": (
        f"not exact duplicates, and L2 distance of the flattened inputs <= {t.near_duplicate_ratio:g} x the "
        f"typical nearest-neighbour distance (median, over {min(t.nn_sample, sum(len(x) for x in flats.values()))} "
        "sampled examples, of the exact L2 distance to the closest non-identical example of any split). "
        + (
          f"Candidates: pairs within 2x that radius after a Gaussian random projection to "
          f"{t.projection_dims} dims (misses a given true pair with probability {miss:.1g}), "
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


def conflicting_labels(labels, ids, max_examples: int) -> dict:
  """The report's `conflicting_labels` section: identical inputs with different labels."""
  return {
    "definition": (
      "groups of exact-duplicate inputs (identical bytes) whose labels are not all equal; across two "
      "splits: an input present in both whose labels, pooled over both splits, are not all equal."
    ),
    "within": {s: _conflicts_within(ids[s], labels[s], max_examples) for s in labels},
    "across": {f"{a}/{b}": _conflicts_across(ids, labels, a, b, max_examples) for a, b in split_pairs(list(labels))},
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
