"""The four saliency methods as numbers, on the shortcut study's test photos, through jaxflow's public API.

Why not explain's maps: `jaxflow.explain` draws them (saliency.png, kept in the results) but writes no arrays,
and a study may use jaxflow's public API only. So each measured run is exported (`jaxflow.export`, the f32
program of its latest checkpoint: the final parameters, whose accuracies the report gives) and loaded
(`jaxflow.load_model`); the exported program carries no derivative, so the gradient is taken by central
differences over the 64 pixels (all perturbed copies of a batch in fixed-size calls: one compiled program).

The score differentiated is the binary decision's margin, log p(predicted) - log p(other) = the two logits'
difference (explain differentiates the predicted class's logit; for two classes the margin is the part of it
that decides). From the methods' definitions, as explain computes them:
- vanilla gradient g(x); gradient x input x * g(x);
- SmoothGrad: the mean of g over SMOOTHGRAD_SAMPLES copies of x plus N(0, 0.15^2) noise (0.15 x the input range);
- integrated gradients from the black (zero) baseline: x * the mean of g at alpha x, alpha at IG_STEPS midpoints.

Where it looks: the share of sum |attribution| on background pixels (no ink in the unlit digit), the pixels the
planted day light changes most (by DAY_LEVEL; a full-ink pixel not at all), per row, averaged over rows.
"""

from __future__ import annotations

import numpy as np

import jaxflow
from experiments.sample_bias import data

EPS = 1e-3  # central-difference step in pixel units (pixels in [0, 1])
CHUNK = 8192  # rows per call of the exported program: one batch size, one compile
NOISE_LEVEL = 0.15  # explain's SmoothGrad noise, x the input range (here 1)
METHODS = ("vanilla_gradient", "gradient_x_input", "smoothgrad", "integrated_gradients")
METHOD_NAMES = {
  "vanilla_gradient": "vanilla gradient",
  "gradient_x_input": "gradient x input",
  "smoothgrad": "SmoothGrad",
  "integrated_gradients": "integrated gradients",
}


def _margins(model, x: np.ndarray, target: np.ndarray) -> np.ndarray:
  """log p(target) - log p(other) of a binary model at each row of x, in CHUNK-row calls (the last padded)."""
  out = []
  for start in range(0, len(x), CHUNK):
    part = x[start : start + CHUNK]
    padded = np.concatenate([part, np.zeros((CHUNK - len(part), *x.shape[1:]), np.float32)])
    out.append(model(padded)["probabilities"][: len(part)].astype(np.float64))
  probs = np.concatenate(out)
  logp = np.log(np.maximum(probs, np.finfo(np.float32).tiny))
  rows = np.arange(len(x))
  return logp[rows, target] - logp[rows, 1 - target]


def gradients(model, points: np.ndarray, target: np.ndarray) -> np.ndarray:
  """[m, 64] gradient of the margin for `target` at each of the m points, by central differences."""
  m, d = points.shape[0], int(np.prod(points.shape[1:]))
  flat = points.reshape(m, d).astype(np.float32)
  steps = np.eye(d, dtype=np.float32) * EPS
  both = np.concatenate([(flat[:, None, :] + steps[None]), (flat[:, None, :] - steps[None])])
  margins = _margins(model, both.reshape(2 * m * d, *points.shape[1:]), np.tile(np.repeat(target, d), 2))
  plus, minus = margins.reshape(2, m, d)
  return (plus - minus) / (2 * EPS)


def attributions(model, x: np.ndarray, *, samples: int, ig_steps: int, seed: int) -> tuple[dict, np.ndarray]:
  """({method: [n, 64] attribution}, predicted [n]) for the rows of x, each for its predicted class."""
  n, d = len(x), int(np.prod(x.shape[1:]))
  predicted = _margins(model, x, np.ones(n, np.int64)) > 0  # class 1 where its margin over class 0 is positive
  target = predicted.astype(np.int64)
  flat = x.reshape(n, d)
  g = gradients(model, x, target)
  noise = np.random.default_rng(seed).normal(0.0, NOISE_LEVEL, (samples, *x.shape)).astype(np.float32)
  noisy = gradients(model, (x[None] + noise).reshape(samples * n, *x.shape[1:]), np.tile(target, samples))
  alphas = (np.arange(ig_steps) + 0.5) / ig_steps
  path = gradients(
    model, (alphas[:, None, None, None, None] * x[None]).reshape(-1, *x.shape[1:]), np.tile(target, ig_steps)
  )
  maps = {
    "vanilla_gradient": g,
    "gradient_x_input": flat * g,
    "smoothgrad": noisy.reshape(samples, n, d).mean(axis=0),
    "integrated_gradients": flat * path.reshape(ig_steps, n, d).mean(axis=0),
  }
  return maps, target


def test_rows(images: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(x [2k, 8, 8, 1] lit, the unlit digits [2k, 8, 8, 1], day [2k]) for the first `images` test digits (None:
  all 360), each by day and then by night, as the study's test split holds them."""
  x0, _ = data.test_images()
  x0 = np.repeat(x0[:images], 2, axis=0)
  day = np.tile([True, False], len(x0) // 2)
  return data.relight(x0, day), x0, day


def measure(run_workdir: str, export_dir: str, *, images: int | None, samples: int, ig_steps: int, seed: int) -> dict:
  """Exports the run's latest checkpoint to `export_dir` and measures, per method, the mean share of |attribution|
  on background pixels over all rows, day rows and night rows, and the mean per-row normalized |map|."""
  jaxflow.export(run_workdir, export_dir, checkpoint="latest")
  model = jaxflow.load_model(export_dir)
  x, x0, day = test_rows(images)
  maps, _ = attributions(model, x, samples=samples, ig_steps=ig_steps, seed=seed)
  background = x0.reshape(len(x0), -1) == 0
  row = {"background_pixels": float(background.mean()), "saliency_rows": int(len(x))}
  for method, a in maps.items():
    magnitude = np.abs(a)
    total = magnitude.sum(axis=1)
    kept = total > 0
    share = np.full(len(x), np.nan)
    share[kept] = (magnitude * background).sum(axis=1)[kept] / total[kept]
    row[f"{method}/background_share"] = float(np.nanmean(share))
    row[f"{method}/background_share_day"] = float(np.nanmean(share[day]))
    row[f"{method}/background_share_night"] = float(np.nanmean(share[~day])) if np.isfinite(share[~day]).any() else None
    normalized = magnitude[kept] / total[kept, None]
    row[f"{method}/mean_map"] = normalized.mean(axis=0).reshape(8, 8).round(5).tolist()
  return row
