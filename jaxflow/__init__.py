"""jaxflow: config-driven, measurable JAX experiments.

The Python API is the CLI's twin: `jaxflow train --config=F --workdir=W` calls `jaxflow.train(config, W)`.
Each function loads its package when called (jax, flax, orbax and tfds take 1-2 s to import), so
`import jaxflow` and `jaxflow --help` stay quick.

The map: each package, what it owns, and what it may import (only floors below its own; nothing imports
upward, no cycles, no private names across modules: tests/architecture/test_layering.py holds this).

- floor 7: `cli/`, `__init__`: the verbs (flags -> one library call each) and the public API.
- floor 6: `profiler/` (profile a config, or an exported model: which hardware for inference).
- floor 5: `seeds/` (multi-seed studies), `tuning/` (hyperparameter search, trial pruning), `auditing/`
  (the dataset audit), `inspect/` (explain), `deploy/` (export, load_model, predict, serve).
- floor 4: `run/`: a run assembled in one place (problem, streams, data, programs, state, compile-cache keys),
  its validation, `train` / `train_group`, the run environment.
- floor 3: `precision/` (bf16 and calibrated int8 variants of a model); `training/`: state, losses,
  optimizers, pure steps, where steps are jitted (`programs`), dispatch,
  the epoch loop, early stopping, checkpoints, writers, parallel layouts, transfer.
- floor 2: `data/` (the problem definition, dataset kinds, loading, the host pipeline, device arrays, graph
  batches, augmentation, balance, label noise, adaptation), `models/` (flax models by name, activations,
  initializers), `annotations/` (boxes: IoU, annotator agreement, 3D-to-2D projection).
- floor 1: `workdir/`: the workdir contract (atomic files, one JSON encoder, config.json, summary.json, reports).
- floor 0: `config` (load, override, hash, field checks), `rng` (named PRNG streams), `plotting` (figures).
"""

import sys
import types

from jaxflow.config import ConfigError, load_config

__version__ = "0.1.0"


class _Package(types.ModuleType):
  """`jaxflow.seeds` is the verb, though `jaxflow/seeds/` is also a subpackage. When Python first imports a
  subpackage it sets it as an attribute of its parent (`jaxflow.seeds = <module>`), which would replace the
  function for everyone the moment anything imported `jaxflow.seeds.study` (the verb itself does). The verb
  stays; the subpackage is reached by importing from it (`from jaxflow.seeds import stats`), as the code does."""

  def __setattr__(self, name, value):
    if name == "seeds" and isinstance(value, types.ModuleType):
      return
    super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def train(config, workdir: str, *, quiet: bool = False) -> dict:
  """Trains `config` (a ConfigDict) in `workdir`, resuming a previous run there; returns the summary."""
  from jaxflow.run.train import train_and_evaluate  # deferred: loads jax, flax, tfds

  return train_and_evaluate(config, workdir, quiet=quiet)


def seeds(config, workdir: str, **kw) -> dict:
  """The same config trained with many seeds in `workdir` (`jaxflow seeds`): `seeds=16`, `vary="all"` (or streams
  such as "init,data"), `mode="auto"`, `study=None | "sources"`, `check_determinism=False`, `quiet=True`, `plots=True`
  (False: no plots/*.png). Seed i of a sweep pins each varied stream to `config.seed + i`, so two configs run with the
  same `seed` share seed indices (paired). Returns the report: `sweeps[].seeds[]` (workdir, final and best of
  `train.monitor`, status), `sweeps[].final` (mean, std, bootstrap CI), `resolution`, `warnings`, `wall_seconds`
  (jaxflow.seeds.report)."""
  from jaxflow.seeds.study import run_seeds  # deferred: loads jax, flax, tfds

  return run_seeds(config, workdir, **kw)


def seeds_until_decided(a: str, b: str, **kw) -> dict:
  """`jaxflow seeds compare A B --until-decided`: two arms (config files with `workdir=DIR`, or workdirs of
  single-sweep studies, extended in place) trained in rounds until the difference is decided at a 5% total error
  rate; `min_effect=None`, `max_seeds=64`, `first=4`, `round_size=4`, `mode="auto"`, `quiet=True`. Returns the
  decision, seeds spent, each look, the fixed design's count and P(A > B) (jaxflow.seeds.until_decided)."""
  from jaxflow.seeds.until_decided import compare_until_decided  # deferred: loads jax, flax, tfds

  return compare_until_decided(a, b, **kw)


def audit(config, workdir: str) -> dict:
  """Audits the dataset `config` describes (as training would see it) into `workdir`; returns the report."""
  from jaxflow.auditing import run_audit  # deferred: loads jax, flax, tfds

  return run_audit(config, workdir)


def explain(workdir: str, **kw) -> dict:
  """Pictures and sanity checks of the trained run in `workdir` (`jaxflow explain`); returns out, page, report paths."""
  from jaxflow.inspect.explain import run_explain  # deferred: loads jax, flax, tfds

  return run_explain(workdir, **kw)


def tune(config, workdir: str, **kw) -> dict:
  """Hyperparameter search over `space=` (a file or a Space) in `workdir`; returns the report (jaxflow.tuning.study)."""
  from jaxflow.tuning.study import run_tune  # deferred: loads jax, flax, tfds

  return run_tune(config, workdir, **kw)


def optimize(fn, space, **kw) -> dict:
  """Minimizes `fn(point: dict) -> float` over `space` (a dict {name: (low, high) | ('log', low, high) | [choices]},
  a Space or a space file) with `jaxflow tune`'s search: `method=` grid | random | sobol | halton | bo (default),
  `budget=30`, `maximize=False`, `seed=0`, `history_file=` (resumable JSON), `batch=1`. Returns {"best", "history",
  ...} (jaxflow.tuning.optimize)."""
  from jaxflow.tuning.optimize import optimize as run  # deferred: loads jax, scipy

  return run(fn, space, **kw)


def profile(config, workdir: str, **kw) -> dict:
  """Profiles `config`'s model on every device into `workdir` (`jaxflow profile`); returns the report.
  `plots=False`: report.json and report.md only, no plots/*.png."""
  from jaxflow.profiler.run import run_profile  # deferred: loads jax, flax, tfds

  return run_profile(config, workdir, **kw)


def export(workdir: str, out: str, **kw) -> dict:
  """Exports the trained run (or seeds study) in `workdir` to the folder `out` (`jaxflow export`): a jax.export
  program and its model card; `precision=`, `checkpoint=`, `max_accuracy_drop=`. Returns the card."""
  from jaxflow.deploy.export import export_run  # deferred: loads jax, flax, orbax, tfds

  return export_run(workdir, out, **kw)


def load_model(directory: str):
  """The model `export` wrote to `directory`, as a callable: `model(inputs)` -> {output name: array}. Needs
  jax and numpy only (no flax, optax or orbax)."""
  from jaxflow.deploy.artifact import load_model as load  # deferred: loads jax

  return load(directory)


def agreement(a_path: str, b_path: str, out: str | None = None, *, iou_threshold: float = 0.5) -> dict:
  """How well two annotators' COCO box files agree (`jaxflow agree`): Hungarian matching by IoU per image and
  category; writes out/agreement.json and .md when `out` is given. Returns overall, per_category, per_image
  (jaxflow.annotations.agreement.compare_files); a bad file raises CocoError naming the file and the field."""
  from jaxflow.annotations.agreement import compare_files  # deferred: loads jax
  from jaxflow.annotations.agreement_report import write_agreement  # deferred with it: writes through numpy

  result = compare_files(a_path, b_path, iou_threshold=iou_threshold)
  if out is not None:
    write_agreement(out, result)
  return result


def project_box3d(center, size, yaw, intrinsics, extrinsics, image_size=None, near: float = 1e-2):
  """The 2-D box that one 3-D box covers in a pinhole camera: (box [4], corners_2d [8, 2], visible []); jit- and
  vmap-able. Conventions (KITTI camera axes, yaw about y) in jaxflow.annotations.boxes.project_box3d."""
  from jaxflow.annotations.boxes import project_box3d as project  # deferred: loads jax

  return project(center, size, yaw, intrinsics, extrinsics, image_size, near)


__all__ = [
  "ConfigError",
  "agreement",
  "audit",
  "explain",
  "export",
  "load_config",
  "load_model",
  "optimize",
  "project_box3d",
  "profile",
  "seeds",
  "seeds_until_decided",
  "train",
  "tune",
]
