"""The near-duplicate search: pairs of examples closer than a radius, without an n^2 x d product.

Scales to ~20k x 3072 examples: a Gaussian random projection to `projection_dims` dimensions proposes
candidate pairs, and each candidate is then checked exactly in the original space (`near_duplicates`).
The radius is relative to the data's typical nearest-neighbour distance (`typical_nn_distance`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

# Candidate pairs checked per near-duplicate comparison before giving up (the report then says
# `truncated`): only data made of one huge cluster of near-identical inputs gets there.
_MAX_CANDIDATES = 5_000_000
# Bytes of float64 distance block per chunk of the pairwise searches.
_BLOCK_BYTES = 64 * 2**20


def typical_nn_distance(flats, ids, sample: int, seed: int) -> float:
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


def search_coords(flats, dims: int | None, seed: int) -> dict[str, np.ndarray]:
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


def near_duplicates(flats, coords, labels, ids, a: str, b: str, radius: float, max_examples: int) -> dict:
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
