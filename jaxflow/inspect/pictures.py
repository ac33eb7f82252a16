"""Pictures of a model, drawn on the host with matplotlib's object API (a bare `Figure` on the Agg
canvas: no pyplot, so no global figure state and no GUI backend).

Grids of small images (kernels, activation maps, saliency overlays) are composed into one RGB mosaic
with numpy and drawn with a single `imshow`: one Axes instead of one per tile keeps a 16 x 5 grid at a
few tens of milliseconds (matplotlib spends its time per Axes and per text, not per pixel).
Every function returns a Figure; `render` turns it into an RGB array [H, W, 3] uint8, which is what
both the PNG files and the TensorBoard image summaries are made from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from PIL import Image

from jaxflow.plotting import new_figure

TITLES = {
  "vanilla_gradient": "gradient",
  "gradient_x_input": "gradient x input",
  "smoothgrad": "SmoothGrad",
  "integrated_gradients": "integrated gradients",
}


def render(fig: Figure) -> np.ndarray:
  """The figure as RGB uint8 [H, W, 3]."""
  canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
  canvas.draw()
  return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def save_png(image: np.ndarray, path: str) -> None:
  Image.fromarray(np.asarray(image, np.uint8)).save(path, format="png")


# --- numpy helpers: tiles and mosaics ----------------------------------------------------------------


def _colormap(name: str):
  return matplotlib.colormaps[name]


def resample(tile: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """Nearest-neighbour resampling of [h, w, ...] to [size[0], size[1], ...]."""
  rows = np.arange(size[0]) * tile.shape[0] // size[0]
  cols = np.arange(size[1]) * tile.shape[1] // size[1]
  return tile[rows][:, cols]


def _unit_or_minmax(values: np.ndarray, as_input: bool) -> np.ndarray:
  lo, hi = values.min(), values.max()
  if as_input and lo >= 0 and hi <= 1:
    return values
  return (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)


def gray_rgb(image: np.ndarray, *, as_input: bool = False) -> np.ndarray:
  """[h, w, c] (or [h, w]) -> RGB floats in [0, 1]: c == 3 as colour, else the mean channel, min-max scaled.

  `as_input`: a model input whose values lie in [0, 1] (pixels as training scaled them) is drawn on that fixed
  scale, not stretched to its own range: a darker or brighter photo then looks darker or brighter, which is
  what a brightness shortcut needs to be seen (the interpretability study's day/night tanks looked identical)."""
  image = np.asarray(image, np.float64)
  if image.ndim == 3 and image.shape[-1] == 3:
    return _unit_or_minmax(image, as_input)
  plane = image.mean(axis=-1) if image.ndim == 3 else image
  return np.repeat(_unit_or_minmax(plane, as_input)[..., None], 3, axis=-1)


def signed_rgb(values: np.ndarray, scale: float | None = None) -> np.ndarray:
  """[h, w] signed values -> RGB on a diverging map (blue < 0 < red), symmetric around 0."""
  values = np.asarray(values, np.float64)
  scale = scale if scale is not None else float(np.abs(values).max())
  scaled = 0.5 + 0.5 * values / scale if scale > 0 else np.full(values.shape, 0.5)
  return _colormap("RdBu_r")(np.clip(scaled, 0, 1))[..., :3]


def heat_rgb(values: np.ndarray, cmap: str = "viridis") -> np.ndarray:
  """[h, w] -> RGB, min-max scaled (a constant map is drawn at the bottom of the map)."""
  values = np.asarray(values, np.float64)
  lo, hi = values.min(), values.max()
  scaled = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
  return _colormap(cmap)(scaled)[..., :3]


def overlay_rgb(image: np.ndarray, attribution: np.ndarray, *, percentile: float = 99.0) -> np.ndarray:
  """|attribution| [h, w] as a heat map over the grey input: the heat's opacity is its strength.

  Scaled per map by its `percentile` of |values| (a few extreme pixels would otherwise wash out the rest).
  """
  strength = np.abs(np.asarray(attribution, np.float64))
  top = np.percentile(strength, percentile)
  strength = np.clip(strength / top, 0, 1) if top > 0 else np.zeros_like(strength)
  heat = _colormap("inferno")(strength)[..., :3]
  base = 0.6 * gray_rgb(image, as_input=True)
  alpha = strength[..., None]
  return (1 - alpha) * base + alpha * heat


def mosaic(tiles: Sequence[Sequence[np.ndarray]], *, tile: tuple[int, int], pad: int = 2) -> np.ndarray:
  """Rows of RGB tiles (each resampled to `tile`; None leaves a white cell) -> one RGB image."""
  rows, cols = len(tiles), max(len(r) for r in tiles)
  h, w = tile
  out = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad, 3))
  for i, row in enumerate(tiles):
    for j, cell in enumerate(row):
      if cell is not None:
        top, left = pad + i * (h + pad), pad + j * (w + pad)
        out[top : top + h, left : left + w] = resample(cell, tile)
  return out


def _tile_size(shape: tuple[int, int], at_least: int = 32) -> tuple[int, int]:
  """`shape` scaled by a whole factor until its shorter side is at least `at_least` pixels."""
  factor = max(1, -(-at_least // max(1, min(shape))))
  return shape[0] * factor, shape[1] * factor


def _grid_figure(
  tiles, *, tile, col_labels=(), row_labels=(), title="", pad=2, width_per_col=1.0, min_width=4.0
) -> Figure:
  """A mosaic of tiles in one Axes, the figure sized to the mosaic's aspect (no blank bands);
  column labels on top, row labels on the left (margins in inches)."""
  image = mosaic(tiles, tile=tile, pad=pad)
  cols = max(len(r) for r in tiles)
  left = 1.3 if row_labels else 0.1
  top = (0.3 if col_labels else 0.05) + (0.3 if title else 0.0)
  width = max(min_width, width_per_col * cols + left + 0.1)
  axes_w = width - left - 0.1
  axes_h = axes_w * image.shape[0] / image.shape[1]
  height = axes_h + top + 0.1
  fig = new_figure(width, height)
  ax = fig.add_axes((left / width, 0.1 / height, axes_w / width, axes_h / height))
  ax.imshow(image, interpolation="nearest", aspect="auto")

  def centre(k, size):
    return pad + k * (size + pad) + size / 2

  ax.set_xticks([centre(j, tile[1]) for j in range(len(col_labels))], col_labels, fontsize=8)
  ax.xaxis.tick_top()
  ax.set_yticks([centre(i, tile[0]) for i in range(len(row_labels))], row_labels, fontsize=7)
  ax.tick_params(length=0)
  for side in ax.spines.values():
    side.set_visible(False)
  if title:
    fig.text(0.5, 1 - 0.06 / height, title, ha="center", va="top", fontsize=9)
  return fig


# --- the pictures ---------------------------------------------------------------------------------------


def kernel_grid(
  kernels: Sequence[tuple[str, np.ndarray]], *, image_shape: tuple[int, ...] | None = None, max_tiles: int = 64
) -> Figure:
  """The first layer's weights as pictures.

  A conv kernel [kh, kw, c_in, c_out] is one tile per output channel (colour when c_in == 3, else the
  mean over input channels); a Dense kernel [prod(image_shape), units] on a flattened image is one
  tile per unit, reshaped to the image. Tiles are signed (blue < 0 < red), each scaled by its own
  largest |weight| (the patterns, not the norms). Any other kernel [fan_in, units] (an RNN's input
  gates, a GNN's feature map) is drawn as a matrix, one panel per kernel.
  """
  kernels = [(name, np.asarray(kernel, np.float64)) for name, kernel in kernels]
  tiled = []
  for name, kernel in kernels:
    if kernel.ndim == 4:
      tiles = [kernel[..., o] for o in range(kernel.shape[-1])]
      tiled.append((name, kernel, [gray_rgb(t) if t.shape[-1] == 3 else signed_rgb(t.mean(axis=-1)) for t in tiles]))
    elif (
      kernel.ndim == 2
      and image_shape is not None
      and len(image_shape) == 3
      and kernel.shape[0] == int(np.prod(image_shape))
    ):
      tiled.append(
        (name, kernel, [signed_rgb(kernel[:, u].reshape(image_shape).mean(axis=-1)) for u in range(kernel.shape[1])])
      )
  if len(tiled) == len(kernels) == 1:
    name, kernel, tiles = tiled[0]
    tiles = tiles[:max_tiles]
    cols = min(len(tiles), 16)
    grid = [tiles[r * cols : (r + 1) * cols] for r in range(-(-len(tiles) // cols))]
    shown = f"{len(tiles)} of {kernel.shape[-1]}" if len(tiles) < kernel.shape[-1] else f"{len(tiles)}"
    return _grid_figure(
      grid,
      tile=_tile_size(tiles[0].shape[:2]),
      width_per_col=0.5,
      min_width=6.0,
      title=f"{name} {list(kernel.shape)}: {shown} filters, each scaled to its own max |w| (blue < 0 < red)",
    )
  fig = new_figure(8.0, 0.4 + 2.2 * len(kernels))
  for p, (name, kernel) in enumerate(kernels):
    ax = fig.add_subplot(len(kernels), 1, p + 1)
    matrix = kernel.reshape(-1, kernel.shape[-1])
    scale = float(np.abs(matrix).max()) or 1.0
    shown = ax.imshow(matrix, cmap="RdBu_r", vmin=-scale, vmax=scale, aspect="auto", interpolation="nearest")
    ax.set_ylabel("input", fontsize=8)
    ax.tick_params(labelsize=7)
    fig.colorbar(shown, ax=ax, fraction=0.03, pad=0.01)
    ax.set_title(f"{name} {list(kernel.shape)}: rows input features, columns units", fontsize=9)
  fig.subplots_adjust(
    left=0.08, right=0.92, top=1 - 0.35 / fig.get_figheight(), bottom=0.3 / fig.get_figheight(), hspace=0.55
  )
  return fig


def activation_maps(
  name: str, images: np.ndarray, maps: np.ndarray, captions: Sequence[str], *, max_channels: int = 16
) -> Figure:
  """One conv layer's post-activation maps [b, h, w, c] for the examples [b, H, W, C]: per row the
  input, then the first `max_channels` channels (each map min-max scaled; viridis)."""
  maps = np.asarray(maps)
  channels = min(maps.shape[-1], max_channels)
  tile = _tile_size(images.shape[1:3])
  rows = [
    [gray_rgb(img, as_input=True)] + [heat_rgb(m[..., ch]) for ch in range(channels)] for img, m in zip(images, maps)
  ]
  shown = f"first {channels} of {maps.shape[-1]}" if channels < maps.shape[-1] else f"{channels}"
  return _grid_figure(
    rows,
    tile=tile,
    col_labels=["input"] + [str(ch) for ch in range(channels)],
    row_labels=list(captions),
    title=f"{name}: post-activation maps {list(maps.shape[1:])} ({shown} channels; each map scaled to its range)",
    width_per_col=0.55,
  )


def dense_activations(layers: Mapping[str, np.ndarray], captions: Sequence[str]) -> Figure:
  """Hidden features [b, units] of non-convolutional layers, one heat map per layer (rows: examples)."""
  fig = new_figure(8.0, 0.6 + 1.9 * len(layers))
  for p, (name, acts) in enumerate(layers.items()):
    acts = np.asarray(acts).reshape(len(captions), -1)
    ax = fig.add_subplot(len(layers), 1, p + 1)
    shown = ax.imshow(acts, aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_yticks(range(len(captions)), captions, fontsize=6)
    ax.set_title(f"{name}: {acts.shape[1]} units", fontsize=9)
    fig.colorbar(shown, ax=ax, fraction=0.03, pad=0.01)
  fig.subplots_adjust(
    left=0.16, right=0.92, top=1 - 0.3 / fig.get_figheight(), bottom=0.3 / fig.get_figheight(), hspace=0.6
  )
  return fig


def saliency_grid(images: np.ndarray, maps: Mapping[str, np.ndarray], captions: Sequence[str], *, title: str) -> Figure:
  """Per row an example: the input, then |attribution| of each method overlaid on it."""
  tile = _tile_size(images.shape[1:3], at_least=48)
  rows = []
  for i, image in enumerate(images):
    row = [gray_rgb(image, as_input=True)]
    for values in maps.values():
      attribution = np.asarray(values[i])
      row.append(overlay_rgb(image, attribution.sum(axis=-1) if attribution.ndim == 3 else attribution))
    rows.append(row)
  return _grid_figure(
    rows,
    tile=tile,
    col_labels=["input"] + [TITLES.get(m, m) for m in maps],
    row_labels=list(captions),
    title=title,
    width_per_col=1.35,
  )


def time_step_bars(
  inputs: np.ndarray,
  per_step: Mapping[str, np.ndarray],
  captions: Sequence[str],
  *,
  lengths: np.ndarray | None = None,
  title: str,
  input_title: str = "input (time down)",
  step_names: Sequence[str] | None = None,
) -> Figure:
  """Saliency per time step: per band an example, its input as [T, F] (time downwards: an image read
  row by row is the image itself), then one bar per step and method (sum of |attribution| over the
  step's features, scaled to the example's largest step). Padded steps (t >= length) are grey.
  `step_names` (a CSV's feature columns) label the first band's bars; every band has the same order.

  One Axes per column, every example a band of it (not an Axes per example and method: matplotlib's
  cost is per Axes and per tick, ~40 Axes took seconds to draw).
  """
  rows, methods = len(captions), list(per_step)
  steps = inputs.shape[1]
  gap = max(1, steps // 4)
  band = steps + gap
  total = rows * band - gap
  fig = new_figure(1.6 + 1.8 * (len(methods) + 1), 0.9 + 1.15 * rows)
  grid = fig.add_gridspec(
    1,
    len(methods) + 1,
    left=0.12,
    right=0.86 if step_names is not None else 0.98,
    top=1 - 0.6 / fig.get_figheight(),
    bottom=0.35 / fig.get_figheight(),
    wspace=0.08,
  )
  _input_bands(fig.add_subplot(grid[0, 0]), inputs, captions, band=band, total=total, title=input_title)
  y = np.concatenate([i * band + np.arange(steps) for i in range(rows)])
  valid = np.ones((rows, steps), bool) if lengths is None else np.arange(steps)[None, :] < np.asarray(lengths)[:, None]
  colours = np.where(valid.ravel(), "#c44e52", "#bbbbbb")
  for j, method in enumerate(methods):
    values = np.asarray(per_step[method], np.float64).reshape(rows, steps)
    top = values.max(axis=1, keepdims=True)
    scaled = values / np.where(top > 0, top, 1.0)
    ax = fig.add_subplot(grid[0, j + 1], sharey=None)
    ax.barh(y, scaled.ravel(), color=colours, height=0.8)
    if lengths is not None:
      for i, length in enumerate(np.asarray(lengths)):
        if length < steps:
          ax.axhspan(i * band + length - 0.5, i * band + steps - 0.5, color="#eeeeee", zorder=0)
    ax.set_ylim(total - 0.5, -0.5)
    ax.set_xlim(0, 1.05)
    named = step_names is not None and len(step_names) == steps
    if named and j == len(methods) - 1:  # the first band's names, right of the last column; bands repeat the order
      ax.yaxis.tick_right()
      ax.set_yticks(range(steps), list(step_names), fontsize=5)
    else:
      ax.set_yticks([])
    ax.set_xticks([0, 1], ["0", "max"], fontsize=6)
    ax.set_title(TITLES.get(method, method), fontsize=8)
    for i in range(1, rows):
      ax.axhline(i * band - gap / 2 - 0.5, color="#dddddd", linewidth=0.6)
  fig.suptitle(title, fontsize=10)
  return fig


def _input_bands(ax, inputs: np.ndarray, captions: Sequence[str], *, band: int, total: int, title: str) -> None:
  """time_step_bars' first column: each example's input [T, F] scaled to [0, 1], one band per example."""
  rows, steps = len(captions), inputs.shape[1]
  centres = [i * band + (steps - 1) / 2 for i in range(rows)]
  flat = np.asarray(inputs, np.float64).reshape(rows, steps, -1)
  stacked = np.full((total, flat.shape[-1]), np.nan)
  for i in range(rows):
    lo, hi = flat[i].min(), flat[i].max()
    stacked[i * band : i * band + steps] = (flat[i] - lo) / (hi - lo) if hi > lo else 0.0
  cmap = _colormap("gray").with_extremes(bad="white")
  ax.imshow(
    stacked, cmap=cmap, aspect="auto", interpolation="nearest", extent=(-0.5, flat.shape[-1] - 0.5, total - 0.5, -0.5)
  )
  ax.set_yticks(centres, list(captions), fontsize=7)
  ax.set_xticks([])
  ax.set_title(title, fontsize=8)


def graph_importance(
  drawings: Sequence[dict], importance: Mapping[str, np.ndarray], captions: Sequence[str], *, title: str
) -> Figure:
  """Node importance on the drawn graph: per row an explained node or graph, per column a method.

  `drawings[i]`: {"positions": [n, 2] (a networkx layout), "senders", "receivers" (edges among those
  n nodes), "focus": index of the explained node or None}; `importance[method][i]`: [n] (sum of
  |attribution| over each node's features). Colour and size grow with importance, scaled per panel;
  the explained node is ringed in black.
  """
  methods = list(importance)
  rows = len(drawings)
  fig = new_figure(1.2 + 2.3 * len(methods), 0.6 + 2.3 * rows)
  cmap = _colormap("viridis")
  for i, drawing in enumerate(drawings):
    pos = np.asarray(drawing["positions"])
    segments = (
      np.stack([pos[np.asarray(drawing["senders"])], pos[np.asarray(drawing["receivers"])]], axis=1)
      if len(drawing["senders"])
      else np.zeros((0, 2, 2))
    )
    for j, method in enumerate(methods):
      ax = fig.add_subplot(rows, len(methods), i * len(methods) + j + 1)
      ax.add_collection(LineCollection(segments, colors="#999999", linewidths=0.6, zorder=1))
      values = np.asarray(importance[method][i], np.float64)
      scaled = values / values.max() if values.max() > 0 else np.zeros_like(values)
      ax.scatter(
        pos[:, 0], pos[:, 1], c=cmap(scaled), s=12 + 70 * scaled, edgecolors="#333333", linewidths=0.3, zorder=2
      )
      if drawing.get("focus") is not None:
        f = drawing["focus"]
        ax.scatter([pos[f, 0]], [pos[f, 1]], s=150, facecolors="none", edgecolors="black", linewidths=1.5, zorder=3)
      ax.set_xticks([])
      ax.set_yticks([])
      ax.margins(0.08)
      if i == 0:
        ax.set_title(TITLES.get(method, method), fontsize=8)
      if j == 0:
        ax.set_ylabel(captions[i], fontsize=7)
  fig.suptitle(title, fontsize=10)
  fig.subplots_adjust(left=0.06, right=0.98, top=1 - 0.5 / fig.get_figheight(), bottom=0.02, hspace=0.12, wspace=0.05)
  return fig


def sanity_summary(randomization: Mapping[str, dict], completeness: Mapping[int, dict]) -> Figure:
  """Left: rank correlation of trained vs re-initialized saliency per method (mean, min-max bars).
  Right: IG completeness error |sum(attributions) - (f(x) - f(baseline))| vs the number of steps."""
  fig = new_figure(9.0, 3.4)
  ax = fig.add_subplot(1, 2, 1)
  methods = [m for m in randomization if randomization[m]["mean"] is not None]
  means = np.array([randomization[m]["mean"] for m in methods])
  low = means - np.array([randomization[m]["min"] for m in methods])
  high = np.array([randomization[m]["max"] for m in methods]) - means
  ax.bar(range(len(methods)), means, yerr=[low, high], color="#4c72b0", capsize=3)
  ax.axhline(1.0, color="#c44e52", linestyle="--", linewidth=1)
  ax.set_xticks(range(len(methods)), [TITLES.get(m, m) for m in methods], fontsize=7, rotation=15)
  ax.set_ylim(min(-0.2, float(means.min() - low.max()) - 0.05) if len(methods) else -0.2, 1.1)
  ax.set_ylabel("Spearman rho (trained vs random)", fontsize=8)
  ax.set_title("model randomization: lower is better (1 = maps ignore the weights)", fontsize=8)
  ax = fig.add_subplot(1, 2, 2)
  steps = sorted(completeness)
  for key, label in (("max_abs_error", "max over examples"), ("mean_abs_error", "mean")):
    ax.plot(steps, [max(completeness[s][key], 1e-12) for s in steps], marker="o", label=label)
  ax.set_xscale("log", base=2)
  ax.set_yscale("log")
  ax.set_xlabel("integration steps (trapezoid)", fontsize=8)
  ax.set_ylabel("|sum(attr) - (f(x) - f(x'))|", fontsize=8)
  ax.set_title("integrated gradients: completeness error", fontsize=8)
  ax.legend(fontsize=7)
  ax.tick_params(labelsize=7)
  fig.subplots_adjust(left=0.08, right=0.98, top=0.9, bottom=0.2, wspace=0.3)
  return fig
