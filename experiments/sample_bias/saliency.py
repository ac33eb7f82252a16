"""Where a trained run looks, as numbers: its vanilla-gradient saliency on the counterfactual test split.

Why not read explain's maps: `jaxflow.explain` draws them (saliency.png, kept in the results) but writes no
arrays, and the study may use jaxflow's public API only. So each measured run is exported (`jaxflow.export`, the
f32 program of its latest checkpoint: the final parameters, whose accuracies the report gives, not the 'best' one,
which the eval split, here the counterfactual test, picks) and loaded (`jaxflow.load_model`), and the gradient is
taken by central differences over the 64 pixels, all perturbed copies in one call.

What is differentiated: log of the probability of the class the model does NOT predict. For two classes that is
-softplus(margin), whose gradient is the margin's gradient times a per-example factor (the predicted class's
probability), so every per-example share below is that of the margin's gradient, and it stays finite where a
confident model's predicted probability has rounded to 1.0 in float32.

Two numbers per example, averaged over the test rows:
- background share: the share of sum |gradient| on pixels without ink (0 in the unlit image), the pixels the
  day light changes most (by DAY_LEVEL; a full-ink pixel not at all). A map spread evenly has the share of
  background pixels (reported as `background_pixels`).
- light alignment: |cosine| between the gradient and the day light's own change (DAY_LEVEL x (1 - x)): 1 when
  the model's local decision moves exactly along the planted brightness, about 0 when it ignores it.
"""

from __future__ import annotations

import os

import numpy as np

import jaxflow
from experiments.sample_bias import data

EPS = 1e-3  # central-difference step in pixel units (pixels in [0, 1])


def _gradients(model, x: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(gradient [n, 64] of log p(target) at x, finite [n] bool) by central differences, one model call."""
  n, d = x.shape[0], int(np.prod(x.shape[1:]))
  flat = x.reshape(n, d)
  steps = np.eye(d, dtype=np.float32) * EPS
  plus = (flat[:, None, :] + steps[None]).reshape(n * d, *x.shape[1:])
  minus = (flat[:, None, :] - steps[None]).reshape(n * d, *x.shape[1:])
  probs = model(np.concatenate([plus, minus]).astype(np.float32))["probabilities"].astype(np.float64)
  rows = np.repeat(target, d)
  p = probs[np.arange(2 * n * d), np.concatenate([rows, rows])]
  with np.errstate(divide="ignore"):
    logp = np.log(p).reshape(2, n, d)
  finite = np.isfinite(logp).all(axis=(0, 2))
  grad = np.where(finite[:, None], (logp[0] - logp[1]) / (2 * EPS), 0.0)
  return grad, finite


def measure(run_workdir: str, export_dir: str, rows: int | None = None) -> dict:
  """Exports the latest checkpoint of the run in `run_workdir` to `export_dir`, then measures its saliency on the
  first `rows` counterfactual test rows (each test image by day and by night; None: all 720)."""
  jaxflow.export(run_workdir, export_dir, checkpoint="latest")
  model = jaxflow.load_model(export_dir)
  x0, _ = data.test_images()
  x0 = np.repeat(x0, 2, axis=0)  # as the test split holds them: day, then night
  day = np.tile([True, False], len(x0) // 2)
  if rows is not None:
    x0, day = x0[:rows], day[:rows]
  x = data.relight(x0, day)
  predicted = model(x)["probabilities"].argmax(axis=-1)
  grad, finite = _gradients(model, x, 1 - predicted)
  flat0 = x0.reshape(len(x0), -1)
  background = flat0 == 0
  magnitude = np.abs(grad)
  total = magnitude.sum(axis=1)
  kept = finite & (total > 0)
  share = (magnitude * background).sum(axis=1)[kept] / total[kept]
  light = data.DAY_LEVEL * (1.0 - flat0)
  cosine = (
    np.abs((grad * light).sum(axis=1))[kept] / (np.linalg.norm(grad, axis=1) * np.linalg.norm(light, axis=1))[kept]
  )
  return {
    "background_share": float(share.mean()),
    "light_alignment": float(cosine.mean()),
    "background_pixels": float(background.mean()),
    "saliency_rows": int(kept.sum()),
    "saliency_rows_dropped": int((~kept).sum()),
  }


def export_path(root: str, arm: str, workdir: str) -> str:
  """A fresh export folder per run (jaxflow.export refuses an existing one)."""
  slug = "".join(c if c.isalnum() else "_" for c in arm)
  return os.path.join(root, "exports", slug, os.path.basename(os.path.normpath(workdir)))
