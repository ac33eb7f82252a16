"""`jaxflow explain --workdir=RUN`: pictures of what a trained run learned, and sanity checks of them.

run_explain(workdir) loads the run's best checkpoint (jaxflow/inspect/trained_run.py), computes on the
device, with one jitted program run once per parameter set, the saliency of the chosen examples
(vanilla gradient, gradient x input, SmoothGrad, integrated gradients) for the trained model and for a
re-initialized one, checks them (jaxflow/inspect/sanity.py) and draws on the host (gallery.py picks
the pictures that fit the model, pictures.py draws them):
  kernels.png              the first layer's weights as pictures (conv filters, Dense units as images)
  activations_<layer>.png  post-activation maps of every conv layer for the examples
  hidden_activations.png   the other layers' sown features (MLP, RNN, GNN layers), examples as rows
  saliency.png             per example, each method's |attribution| over the input (images)
  saliency_randomized.png  the same for the re-initialized model: what the randomization check compares
  saliency_time_steps.png  RNNs: attribution per time step (sum of |attribution| over its features)
  node_importance.png      graph models: per explained node/graph, node importance on the drawn graph
  sanity.png               randomization rank correlations; IG completeness error vs steps
  layer_stats.png          the run's layer statistics vs step, vanishing / exploding layers marked
plus index.html (the page, relative links), report.json (the numbers) and, with `tensorboard=True`,
the same pictures as image summaries in the run's tb/ (a file of its own: the run's files are untouched).

Integrated gradients are evaluated once on a trapezoid path of PATH_STEPS intervals; the attributions
shown use IG_STEPS of them (every other point), and completeness is reported for COMPLETENESS_STEPS,
all from the same gradients (nested grids: no further passes).
"""

from __future__ import annotations

import contextlib
import functools
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxflow.config import ConfigError
from jaxflow.inspect import gallery, layer_plots, page, pictures, saliency, sanity
from jaxflow.inspect.trained_run import choose_examples, explain_key, load_run
from jaxflow.run import compile_cache
from jaxflow.workdir import acquire_lock, read_config, write_json

PATH_STEPS = 128
IG_STEPS = 64
COMPLETENESS_STEPS = (4, 8, 16, 32, 64, 128)
COMPLETENESS_TOLERANCE = 0.02  # the IG_STEPS attributions must sum to f(x) - f(x') within this x max |f(x) - f(x')|
SMOOTHGRAD_SAMPLES = 16
NOISE_LEVEL = 0.15


class Phases:
  """Wall seconds per named phase of explain, for report.json["phases"]: the report says where its own
  time went (loading, compiling the saliency program, each picture), so a slow explain names its cause."""

  def __init__(self):
    self.seconds: dict[str, float] = {}

  @contextlib.contextmanager
  def __call__(self, name: str):
    start = time.perf_counter()
    try:
      yield
    finally:
      self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - start, 3)


def analyse(
  apply_fn,
  params,
  x,
  target,
  key,
  *,
  path_steps: int = PATH_STEPS,
  ig_steps: int = IG_STEPS,
  samples: int = SMOOTHGRAD_SAMPLES,
  noise_level: float = NOISE_LEVEL,
) -> dict:
  """Everything explain computes for one parameter set, as one traceable function.

  One vmapped value-and-gradient over all the points the methods need: the trapezoid path from the
  zero baseline at alphas k/path_steps (alpha = 1 is x: the vanilla gradient and the score; alpha = 0
  the baseline's score; every ig_steps dividing path_steps reuses a subset), then SmoothGrad's noisy
  copies. One backward pass to compile instead of one per method (the compile dominates here).
  """
  alphas, _ = saliency.path_points(path_steps, "trapezoid")
  points = jnp.concatenate(
    [
      saliency.path_points_between(x, alphas),
      saliency.noisy_copies(x, key=key, samples=samples, noise_level=noise_level),
    ]
  )
  values, grads = saliency.gradients_at(apply_fn, params, points, target)
  path = grads[: path_steps + 1]
  _, weights = saliency.path_points(ig_steps, "trapezoid")
  return {
    "vanilla_gradient": path[-1],
    "gradient_x_input": x * path[-1],
    "smoothgrad": jnp.mean(grads[path_steps + 1 :], axis=0),
    "integrated_gradients": saliency.combine_path(path[:: path_steps // ig_steps], weights, x),
    "path": path,
    "score": values[path_steps],
    "score_baseline": values[0],
  }


def sanity_checks(run, chosen, trained: dict, maps: dict, random_maps: dict) -> tuple[dict, dict, dict]:
  """(model randomization per method, IG completeness by steps, the shown IG maps' completeness check).

  Images and sequences compare the maps entry by entry (support: where the input is not the zero
  baseline); graphs compare node importances over the drawn graph's nodes (support: the explained
  output's receptive field, the nodes with a nonzero gradient in either model).
  """
  if run.family == "graph":
    trained_nodes = {m: gallery.node_importance(v, chosen) for m, v in maps.items()}
    random_nodes = {m: gallery.node_importance(v, chosen) for m, v in random_maps.items()}
    field = [(a > 0) | (b > 0) for a, b in zip(trained_nodes["vanilla_gradient"], random_nodes["vanilla_gradient"])]
    randomization = sanity.model_randomization(trained_nodes, random_nodes, support=field)
  else:
    randomization = sanity.model_randomization(maps, random_maps, support=chosen.x != 0)
  completeness = sanity.completeness_by_steps(
    trained["path"], chosen.x, trained["score"], trained["score_baseline"], steps=COMPLETENESS_STEPS
  )
  shown_gap = sanity.completeness_gap(maps["integrated_gradients"], trained["score"], trained["score_baseline"])
  tolerance = COMPLETENESS_TOLERANCE * max(float(np.max(np.abs(trained["score"] - trained["score_baseline"]))), 1e-6)
  ig_check = {
    "steps": IG_STEPS,
    "rule": "trapezoid",
    "baseline": "zeros",
    "max_abs_error": shown_gap["max_abs_error"],
    "tolerance": tolerance,
    "passed": bool(shown_gap["max_abs_error"] <= tolerance),
  }
  return randomization, completeness, ig_check


SETTINGS = {
  "smoothgrad_samples": SMOOTHGRAD_SAMPLES,
  "noise_level": NOISE_LEVEL,
  "ig_steps": IG_STEPS,
  "path_steps": PATH_STEPS,
  "baseline": "zeros",
  "target": "the predicted class (a single output: that output)",
  "randomization": "every layer re-initialized by model.init with explain_key(seed, 'randomization')",
}


def run_explain(workdir: str, *, examples: int = 16, out: str | None = None, tensorboard: bool = False) -> dict:
  """Explains the run in `workdir` into `out` (default WORKDIR/explain); returns {"out", "page",
  "report", "images", "sanity", "layers"}. Bad input (no run, no checkpoints) raises ConfigError."""
  if not isinstance(examples, int) or examples < 1:
    raise ConfigError(f"--examples={examples!r} must be a positive integer, e.g. --examples=16")
  read_config(workdir)  # a one-line error, before anything is created, when there is no run
  out = out or os.path.join(workdir, "explain")
  writes_into_run = tensorboard or os.path.abspath(out).startswith(os.path.abspath(workdir) + os.sep)
  with acquire_lock(workdir, command="jaxflow explain") if writes_into_run else contextlib.nullcontext():
    return _explain(workdir, examples=examples, out=out, tensorboard=tensorboard)


def _explain(workdir: str, *, examples: int, out: str, tensorboard: bool) -> dict:
  """run_explain's work, while the run's workdir is held when explain writes into it."""
  start = time.perf_counter()
  phases = Phases()
  phases.seconds["process_start_to_explain"] = _since_process_start()
  with phases("load_run"):
    compile_cache.enable(read_config(workdir).get("compilation_cache"))
    run = load_run(workdir)
  with phases("choose_examples"):
    chosen = choose_examples(run, examples)
  os.makedirs(out, exist_ok=True)

  compute = jax.jit(functools.partial(analyse, chosen.apply_fn))
  key = explain_key(run.config, "smoothgrad")
  with phases("saliency_trained"):  # the first call compiles the one program (or loads it from the cache)
    trained = jax.device_get(compute(run.params, chosen.x, chosen.target, key))
  with phases("saliency_randomized"):  # same shapes, params as arguments: the compiled program again
    randomized = jax.device_get(compute(run.random_params, chosen.x, chosen.target, key))
  maps = {m: trained[m] for m in saliency.METHODS}
  random_maps = {m: randomized[m] for m in saliency.METHODS}
  with phases("sanity_checks"):
    randomization, completeness, ig_check = sanity_checks(run, chosen, trained, maps, random_maps)

  with phases("layer_statistics"):
    series, layers = _layer_statistics(workdir)
  settings = dict(SETTINGS)
  with phases("figures"):
    figures = gallery.gallery(
      run,
      chosen,
      maps,
      random_maps,
      randomization=randomization,
      completeness=completeness,
      layer_series=series,
      layer_flags=layers,
      settings=settings,
    )
  images, entries = _save_pictures(figures, out, phases)
  report = {
    "workdir": workdir,
    "checkpoint": {"which": run.which, "step": run.step},
    "model": run.config.model.name,
    "family": run.family,
    "problem": run.problem.kind,
    "examples": _example_records(chosen, trained),
    "settings": settings,
    "sanity": {
      "model_randomization": randomization,
      "ig_completeness": {"by_steps": {str(k): v for k, v in completeness.items()}, "shown": ig_check},
    },
    "layers": layers,
    "images": [e["file"] for e in entries],
    "seconds": None,
    "phases": phases.seconds,
  }
  if tensorboard:
    with phases("tensorboard"):
      report["tensorboard"] = page.write_tensorboard(os.path.join(workdir, "tb"), run.step, images)
  report["seconds"] = round(time.perf_counter() - start, 3)
  return _write_outputs(out, report, entries, phases)


def _layer_statistics(workdir: str) -> tuple[dict | None, dict]:
  """(the run's layer statistics per layer and step, or None; the vanishing / exploding layers flagged)."""
  records = layer_plots.read_layer_records(workdir)
  layers = {
    "records": len(records),
    "vanishing": [],
    "exploding": [],
    "thresholds": {"vanishing": layer_plots.VANISHING, "exploding": layer_plots.EXPLODING},
  }
  series = layer_plots.layer_series(records) if records else None
  if series:
    layers.update(layer_plots.flag_layers(series))
  return series, layers


def _save_pictures(figures: list, out: str, phases: Phases) -> tuple[dict, list[dict]]:
  """Renders every picture into `out`/<stem>.png; returns ({stem: image}, the page's entries)."""
  images = {}
  entries = []
  for picture in figures:
    with phases(f"render/{picture.stem}"):
      image = pictures.render(picture.figure)
      pictures.save_png(image, os.path.join(out, f"{picture.stem}.png"))
    images[picture.stem] = image
    entries.append({"file": f"{picture.stem}.png", "title": picture.title, "text": picture.text})
  return images, entries


def _example_records(chosen, trained: dict) -> list[dict]:
  """Each explained example: its index, label, prediction, target output and score."""
  return [
    {"index": i, "label": _jsonable(y), "prediction": _jsonable(p), "target": int(t), "score": float(s)}
    for i, y, p, t, s in zip(chosen.indices, chosen.labels, chosen.predictions, chosen.target, trained["score"])
  ]


def _write_outputs(out: str, report: dict, entries: list[dict], phases: Phases) -> dict:
  """Writes index.html and report.json into `out` (the page first: the report's phases include it);
  returns run_explain's answer."""
  page_path = os.path.join(out, "index.html")
  with phases("write_page"):
    page.write_page(page_path, report, entries)
  report_path = write_json(os.path.join(out, "report.json"), report)
  return {
    "out": out,
    "page": page_path,
    "report": report_path,
    "images": [os.path.join(out, e["file"]) for e in entries],
    "sanity": report["sanity"],
    "layers": report["layers"],
  }


def _since_process_start() -> float | None:
  """Wall seconds since this process started (Linux /proc; None elsewhere): the interpreter's start and
  the imports (jax, flax, matplotlib) before explain runs, which a whole `jaxflow explain` also pays."""
  try:
    with open("/proc/self/stat") as f:
      started_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
      uptime = float(f.read().split()[0])
  except (OSError, ValueError, IndexError):
    return None
  return round(uptime - started_ticks / os.sysconf("SC_CLK_TCK"), 3)


def _jsonable(value):
  """A label or prediction (a numpy or Python scalar) as a plain Python number for JSON."""
  value = np.asarray(value)
  return value.item()
