"""The eval examples a sweep's seeds disagree on most, saved to be looked at.

Per sweep, in `WORKDIR/<sweep>/`:
- predictions.npz: every seed's eval predictions [S, N], the labels [N], the ensemble's prediction [N] and each
  example's disagreement [N] (the share of seed pairs that differ on it), `seed_indices` the sweep's seed numbers;
- disputed.npz / disputed.csv: the most disputed examples (up to 16, disagreement > 0): their index in the eval
  split (the order training evaluates in), label, ensemble prediction, disagreement, each seed's prediction,
  and (npz) their inputs;
- plots/disputed_<sweep>.png (with plots on, for image-like inputs): those examples in a grid, each titled
  with its label and the seeds' votes. A flat feature vector of a square length (the digits' 64) is drawn as a
  square image, and the title says so.
"""

from __future__ import annotations

import collections
import math
import os

import jax
import numpy as np

from jaxflow.plotting import new_figure
from jaxflow.workdir import write_text


def _savez(path: str, **arrays) -> str:
  """np.savez to a temporary name, then renamed into place (the workdir contract: no half-written file)."""
  tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}.tmp.npz")
  np.savez(tmp, **arrays)
  os.replace(tmp, path)
  return path


def _image_shape(example_shape: tuple[int, ...]) -> tuple[tuple[int, ...], str] | None:
  """How to draw one input: (shape to reshape to, a note), or None when it is not image-like."""
  if len(example_shape) == 3 and example_shape[-1] in (1, 3):
    return example_shape, ""
  if len(example_shape) == 2:
    return example_shape, ""
  if len(example_shape) == 1 and math.isqrt(example_shape[0]) ** 2 == example_shape[0] >= 16:
    side = math.isqrt(example_shape[0])
    return (side, side), f"features drawn as {side}x{side}"
  return None


def _votes(column: np.ndarray) -> str:
  counts = collections.Counter(int(v) for v in column).most_common()
  return " ".join(f"{k}:{n}" for k, n in counts)


def _plot(path: str, sweep: str, inputs: np.ndarray, labels, preds, disagreement, shape, note: str) -> str:
  k = len(labels)
  cols = min(8, k)
  rows = -(-k // cols)
  fig = new_figure(1.6 * cols, 1.9 * rows + 0.6)
  for j in range(k):
    ax = fig.add_subplot(rows, cols, j + 1)
    image = np.asarray(inputs[j], np.float32).reshape(shape)
    ax.imshow(image if image.ndim == 2 or image.shape[-1] == 3 else image[..., 0], cmap="gray")
    ax.set_title(f"y={labels[j]} d={disagreement[j]:.2f}\n{_votes(preds[:, j])}", fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])
  title = f"sweep {sweep}: most disputed eval examples (label y, disagreement d, votes class:seeds)"
  fig.suptitle(title + (f"; {note}" if note else ""), fontsize=8)
  fig.tight_layout()
  fig.savefig(path)
  return path


def write(workdir: str, sweep: str, predicted, arrays: dict, *, plots: bool) -> dict[str, str]:
  """The files above; returns {kind: path relative to the study's workdir}."""
  folder = os.path.join(workdir, sweep)
  os.makedirs(folder, exist_ok=True)
  preds, labels = arrays["predictions"], predicted.labels
  top = arrays["disputed"]
  per_example, ensembled = arrays["per_example_disagreement"], arrays["ensemble_predictions"]
  files = {
    "predictions": _savez(
      os.path.join(folder, "predictions.npz"),
      predictions=preds.astype(np.int32),
      labels=labels,
      ensemble_predictions=ensembled,
      per_example_disagreement=per_example,
      seed_indices=np.asarray(predicted.seed_indices),
    )
  }
  inputs = predicted.inputs
  top_inputs = jax.tree.map(lambda a: np.asarray(a)[top], inputs)
  flat_inputs = {"inputs": top_inputs} if isinstance(top_inputs, np.ndarray) else {}
  files["disputed_npz"] = _savez(
    os.path.join(folder, "disputed.npz"),
    indices=top,
    labels=labels[top],
    ensemble_predictions=ensembled[top],
    disagreement=per_example[top],
    predictions=preds[:, top].astype(np.int32),
    **flat_inputs,
  )
  seeds = " ".join(f"seed_{i:03d}" for i in predicted.seed_indices)
  rows = ["rank,index,label,ensemble_prediction,disagreement,votes,per_seed_predictions (" + seeds + ")"]
  for rank, i in enumerate(top):
    per_seed = " ".join(str(int(v)) for v in preds[:, i])
    votes = _votes(preds[:, i])
    rows.append(f"{rank},{int(i)},{int(labels[i])},{int(ensembled[i])},{per_example[i]:.4f},{votes},{per_seed}")
  files["disputed_csv"] = write_text(os.path.join(folder, "disputed.csv"), "\n".join(rows) + "\n")
  drawable = _image_shape(top_inputs.shape[1:]) if isinstance(top_inputs, np.ndarray) and len(top) else None
  if plots and drawable:
    os.makedirs(os.path.join(workdir, "plots"), exist_ok=True)
    png = os.path.join(workdir, "plots", f"disputed_{sweep}.png")
    files["disputed_png"] = _plot(png, sweep, top_inputs, labels[top], preds[:, top], per_example[top], *drawable)
  return {k: os.path.relpath(v, workdir) for k, v in files.items()}
