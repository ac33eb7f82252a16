"""Which pictures a run gets, and their captions: the kernels, the activation maps, saliency in the
form that fits the model's input (overlays on images, bars per time step, node importance on the
drawn graph), the sanity checks, the layer statistics. Drawing itself is jaxflow/inspect/pictures.py.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from matplotlib.figure import Figure

from jaxflow.inspect import layer_plots, pictures
from jaxflow.inspect.trained_run import Examples, Run
from jaxflow.models import reads_sequences

MAX_ROWS = 8  # examples drawn per picture (all the examples enter the numbers)
GRAPH_ROWS = 4


@dataclasses.dataclass
class Picture:
  stem: str  # file name without .png; the TensorBoard tag is explain/<stem>
  title: str
  text: str  # what it shows, for the page
  figure: Figure


def _subtree(tree, path):
  """The subtree of nested dicts at `path` (a tuple of keys), or None where it is missing."""
  for part in path:
    if not isinstance(tree, dict) or part not in tree:
      return None
    tree = tree[part]
  return tree


def first_layer_kernels(run: Run, examples: Examples) -> list[tuple[str, np.ndarray]]:
  """The kernels of the model's first layer with parameters (a stack: of its first stage), in call
  order; of those, the ones that read the input itself when the layer has others (an LSTM's input
  kernels ii/if/ig/io, not its hidden ones)."""
  stack = run.config.model.name == "stack"
  layers = [
    p for p in run.layer_order if p and (len(p) >= 2 or not stack) and isinstance(_subtree(run.params, p), dict)
  ]

  def has_kernel(p):
    return "kernel" in _subtree(run.params, p)

  first = next((p for p in layers if any(q[: len(p)] == p and has_kernel(q) for q in layers)), None)
  if first is None:
    return []
  kernels = [
    ("/".join(q), np.asarray(_subtree(run.params, q)["kernel"]))
    for q in layers
    if q[: len(first)] == first and has_kernel(q)
  ]
  x = examples.x
  features = {x.shape[-1], int(np.prod(x.shape[1:])), int(np.prod(x.shape[2:])) if x.ndim > 2 else -1}
  reading = [(n, k) for n, k in kernels if k.ndim == 4 or k.shape[0] in features]
  return reading or kernels


def per_step(attributions: np.ndarray) -> np.ndarray:
  """[k, T, ...] -> [k, T]: |attribution| summed over each step's features (an image: over a row)."""
  a = np.abs(np.asarray(attributions))
  return a.reshape(a.shape[0], a.shape[1], -1).sum(axis=-1)


def node_importance(attributions: np.ndarray, examples: Examples) -> list[np.ndarray]:
  """Per example, [n_drawn]: |attribution| summed over each drawn node's features."""
  a = np.abs(np.asarray(attributions)).sum(axis=-1)  # [k, n]
  return [a[i, rows] for i, rows in enumerate(examples.node_rows)]


def gallery(
  run: Run,
  chosen: Examples,
  maps: dict,
  random_maps: dict,
  *,
  randomization: dict,
  completeness: dict,
  layer_series: dict | None,
  layer_flags: dict,
  settings: dict,
) -> list[Picture]:
  """The pictures for this run, in page order."""
  out = _kernel_pictures(run, chosen)
  if run.family == "image":
    out += _activation_pictures(chosen)
  out += _hidden_pictures(run, chosen)
  if run.family == "image":
    out += _saliency_pictures(chosen, maps, random_maps, settings)
  if reads_sequences(run.config.model):
    out.append(_time_step_picture(run, chosen, maps))
  if run.family == "array":  # flat feature vectors (e.g. a CSV's columns): one bar per feature
    out.append(_feature_picture(chosen, maps, run.problem.feature_names))
  if run.family == "graph":
    out.append(_node_picture(chosen, maps))
  out.append(
    Picture(
      "sanity",
      "Sanity checks",
      "Left: Spearman rank correlation of |saliency| between the trained and a re-initialized model, per method "
      "(mean over examples, min-max bars). "
      "Right: integrated gradients' completeness error vs the number of trapezoid steps.",
      pictures.sanity_summary(randomization, completeness),
    )
  )
  if layer_series:
    out.append(
      Picture(
        "layer_stats",
        "Layer statistics",
        "Activation std and gradient norm per layer vs step (train.layer_stats_every), log scale; "
        f"below {layer_plots.VANISHING:g} (vanishing, v) and above {layer_plots.EXPLODING:g} (exploding, ^) "
        "shaded and marked.",
        layer_plots.plot_layer_stats(layer_series, layer_flags),
      )
    )
  return out


def _kernel_pictures(run: Run, chosen: Examples) -> list[Picture]:
  """The first layer's kernels as pictures, when the model has a first layer with a kernel."""
  kernels = first_layer_kernels(run, chosen)
  if not kernels:
    return []
  return [
    Picture(
      "kernels",
      "First-layer weights",
      "The first layer's kernels: conv filters as image tiles, Dense units on a flattened image as images, "
      "other kernels (RNN input gates, GNN feature maps) as matrices. "
      "Blue negative, red positive, each tile scaled to its own largest |weight|.",
      pictures.kernel_grid(kernels, image_shape=tuple(chosen.x.shape[1:]) if run.family == "image" else None),
    )
  ]


def _activation_pictures(chosen: Examples) -> list[Picture]:
  """Images: one picture of activation maps per conv layer (a sown 4-d output)."""
  shown = slice(0, MAX_ROWS)
  captions = chosen.captions[shown]
  return [
    Picture(
      f"activations_{name.replace('/', '_')}",
      f"Activation maps: {name}",
      f"Post-activation output of conv layer {name} for each example "
      "(one tile per channel, each scaled to its own range).",
      pictures.activation_maps(name, chosen.x[shown], value[shown], captions),
    )
    for name, value in chosen.sown.items()
    if np.ndim(value) == 4
  ]


def _hidden_pictures(run: Run, chosen: Examples) -> list[Picture]:
  """The non-convolutional layers' features, one row per example, when there are any."""
  hidden = _hidden_features(run, chosen)
  if not hidden:
    return []
  shown = slice(0, MAX_ROWS)
  return [
    Picture(
      "hidden_activations",
      "Hidden activations",
      "Each non-convolutional layer's sown output (post-activation features; an RNN layer's final state; "
      "a GNN layer's embedding of the explained node), one row per example.",
      pictures.dense_activations({n: v[shown] for n, v in hidden.items()}, chosen.captions[shown]),
    )
  ]


def _saliency_pictures(chosen: Examples, maps: dict, random_maps: dict, settings: dict) -> list[Picture]:
  """Images: every method's saliency over the input, for the trained and the re-initialized model; every
  example explain was asked for (the other pictures draw the first MAX_ROWS)."""
  shown = slice(None)
  captions = chosen.captions[shown]
  return [
    Picture(
      "saliency",
      "Saliency (trained model)",
      "Per example (rows), |attribution| of each method over the input, scaled per map to its 99th percentile. "
      f"SmoothGrad: {settings['smoothgrad_samples']} samples, noise {settings['noise_level']:g} x the input range; "
      f"integrated gradients: {settings['ig_steps']} trapezoid steps from a zero baseline. "
      "Target: the predicted class.",
      pictures.saliency_grid(
        chosen.x[shown],
        {m: v[shown] for m, v in maps.items()},
        captions,
        title="saliency of the trained model (predicted class)",
      ),
    ),
    Picture(
      "saliency_randomized",
      "Saliency (re-initialized model)",
      "The same maps for the model with freshly initialized weights (same examples and target class). "
      "A method whose maps look alike here explains the input, not the model.",
      pictures.saliency_grid(
        chosen.x[shown],
        {m: v[shown] for m, v in random_maps.items()},
        captions,
        title="saliency of a re-initialized model (model randomization check)",
      ),
    ),
  ]


def _time_step_picture(run: Run, chosen: Examples, maps: dict) -> Picture:
  """Models reading sequences: the attribution per time step, next to the input."""
  shown = slice(0, MAX_ROWS)
  steps_in = chosen.x if run.family != "image" else chosen.x.reshape(*chosen.x.shape[:2], -1)
  return Picture(
    "saliency_time_steps",
    "Saliency per time step",
    "For each example, the sum of |attribution| over each time step's features "
    "(an image read row by row: per row), scaled to the example's largest step; padded steps grey.",
    pictures.time_step_bars(
      steps_in[shown],
      {m: per_step(v)[shown] for m, v in maps.items()},
      chosen.captions[shown],
      lengths=None if chosen.lengths is None else chosen.lengths[shown],
      title="saliency per time step (trained model)",
    ),
  )


def _feature_picture(chosen: Examples, maps: dict, feature_names=None) -> Picture:
  """Flat feature vectors: the attribution of each input feature."""
  shown = slice(0, MAX_ROWS)
  flat = chosen.x.reshape(chosen.x.shape[0], -1)
  return Picture(
    "saliency_features",
    "Saliency per input feature",
    "For each example, |attribution| of each input feature (top to bottom), scaled to the example's largest.",
    pictures.time_step_bars(
      flat[shown, :, None],
      {m: per_step(v.reshape(v.shape[0], -1, 1))[shown] for m, v in maps.items()},
      chosen.captions[shown],
      title="saliency per input feature (trained model)",
      input_title="input (features down)",
      step_names=feature_names,
    ),
  )


def _node_picture(chosen: Examples, maps: dict) -> Picture:
  """Graphs: each node's importance on the drawn graph, per explained node or graph."""
  rows = slice(0, GRAPH_ROWS)
  return Picture(
    "node_importance",
    "Node importance",
    "Per explained node (ringed) or graph, each node's importance: the sum over its features of |attribution| "
    "of the explained output, on a networkx spring layout. "
    "Colour and size grow with importance, scaled per panel.",
    pictures.graph_importance(
      chosen.drawings[rows],
      {m: node_importance(v, chosen)[rows] for m, v in maps.items()},
      chosen.captions[rows],
      title="node importance (trained model)",
    ),
  )


def _hidden_features(run: Run, chosen: Examples) -> dict[str, np.ndarray]:
  """Sown [examples, units] features of the non-convolutional layers, one row per example (graphs
  with a node head: the explained nodes' rows of each layer's node embeddings; graph heads: none)."""
  flat = {n: np.asarray(v) for n, v in chosen.sown.items() if np.ndim(v) == 2}
  if run.family != "graph":
    return {n: v for n, v in flat.items() if v.shape[0] == len(chosen.captions)}
  if not chosen.drawings or chosen.drawings[0]["focus"] is None:
    return {}
  rows = np.asarray(chosen.indices)
  return {n: v[rows] for n, v in flat.items() if v.shape[0] == chosen.x.shape[1]}
