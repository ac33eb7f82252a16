"""`jaxflow export`: a trained run (or every seed of a seeds study) -> a jax.export artifact + model card.

The artifact is one serialized StableHLO program (`inference.inference_fn`, the weights as constants) with
a symbolic batch dimension, lowered for cpu, cuda and tpu at once, so the same file runs on any of them
with jax alone (`artifact.load_model`). The program is checked before anything is written: the eval split
is run through it (as stored: uint8 pixels at the stored size) and its accuracy is the card's; for bf16
and int8 (the profiler's calibrated scheme, `jaxflow.precision`), the f32 program is run too, and a
precision whose accuracy drops by more than `max_accuracy_drop` is refused in one line. Files are written
into a temporary folder and renamed into place: a failed export leaves nothing half-written.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxflow import models, rng
from jaxflow import workdir as workdir_files
from jaxflow.config import ConfigError
from jaxflow.data import pipeline, standardize
from jaxflow.data.problem import Problem, read_spec, targets
from jaxflow.deploy import artifact, card, inference
from jaxflow.precision import variants as precision_variants
from jaxflow.run import compile_cache, trained
from jaxflow.run.assemble import problem_of
from jaxflow.training import checkpoints

PLATFORMS = ("cpu", "cuda", "tpu")
PRECISIONS = ("f32", "bf16", "int8")
CHECKPOINTS = {"best": checkpoints.BEST, "latest": checkpoints.LATEST}
CALIBRATION_EXAMPLES = 512
EVAL_BATCH = 512


class Source:
  """One trained run, read back: config, problem, model, parameters and where they came from."""

  def __init__(self, workdir: str, which: str):
    self.workdir = workdir
    self.config = trained.read_config(workdir)
    self.problem: Problem = problem_of(self.config)
    if self.config.model.name in models.GRAPH_MODELS:
      raise ConfigError(
        f"workdir {workdir}: graph models ({self.config.model.name}) are not exported: their inputs are padded "
        "graph tuples whose budgets the data pipeline chooses per batch; export an image, array or sequence model"
      )
    self.model = models.create_model(self.config.model, output_dim=self.problem.output_dim)
    self.params, self.step, self.which = trained.read_params(workdir, CHECKPOINTS[which])
    self.summary = workdir_files.read_summary(workdir) or {}
    scaling = os.path.join(workdir, standardize.FILE)  # the feature scaling the run trained with, if any
    self.standardization = (
      standardize.Standardization.from_json(workdir_files.read_json(scaling)) if os.path.exists(scaling) else None
    )

  def inference(self, forward, raw: inference.RawInput, compute_dtype=jnp.float32):
    """The whole inference function of this run around `forward` (one precision variant's model)."""
    return inference.inference_fn(
      forward, self.problem, raw, compute_dtype=compute_dtype, standardization=self.standardization
    )


def raw_input(source: Source) -> inference.RawInput:
  """What the program takes: the dataset's stored example (or the model's dict input for sequences)."""
  structure = source.problem.input_structure
  if isinstance(structure, dict):
    fields = {k: (tuple(v.shape[1:]), np.dtype(v.dtype).name) for k, v in structure.items()}
    return inference.RawInput("inputs", (), "float32", fields=fields)
  spec = read_spec(source.config)
  return inference.RawInput(spec.input_feature, tuple(spec.input_shape), np.dtype(spec.input_dtype).name)


def raw_split(source: Source, raw: inference.RawInput, split: str) -> tuple[object, np.ndarray]:
  """(stored inputs, targets) of the `split` ("eval" or "train") as the program takes them: the split as
  training reads it before `data.adapt` (relabel's dropped classes removed), uint8 pixels recovered
  exactly from the loader's float32 x / 255 (round(x * 255))."""
  streams = rng.streams(source.config)
  train, evaluation = pipeline.load_splits(source.config, streams["data"])
  chosen = evaluation if split == "eval" else train
  keep, labels = source.problem.adaptation.labels(chosen.labels)
  inputs = jax.tree.map(lambda a: np.asarray(a)[keep], chosen.inputs)
  if raw.scaled:
    inputs = np.round(inputs * np.float32(255.0)).astype(np.uint8)
  return inputs, targets(source.problem, labels)


def _batches(inputs, size: int):
  n = jax.tree.leaves(inputs)[0].shape[0]
  for start in range(0, n, size):
    yield jax.tree.map(lambda a: a[start : start + size], inputs)


def run_program(exported, inputs) -> dict[str, np.ndarray]:
  """The exported program over `inputs` in batches of EVAL_BATCH (one compile per distinct size)."""
  call = jax.jit(exported.call)
  parts = [jax.device_get(call(batch)) for batch in _batches(inputs, EVAL_BATCH)]
  return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def metric(problem: Problem, outputs: dict, labels: np.ndarray) -> dict:
  """Accuracy (classification) or mean absolute error (regression) of a program's outputs."""
  if problem.kind == "regression":
    value = float(np.abs(outputs["value"].reshape(labels.shape) - labels).mean())
    return {"name": "mae", "value": value, "examples": int(labels.shape[0])}
  correct = outputs["probabilities"].argmax(-1) == labels
  return {"name": "accuracy", "value": float(correct.mean()), "examples": int(labels.shape[0])}


def lower(fn, weights, raw: inference.RawInput, platforms=PLATFORMS):
  """jax.export of fn(weights, inputs) with the weights as constants and a symbolic batch dimension."""
  (batch,) = jax.export.symbolic_shape("batch")
  if raw.fields is not None:
    spec = {k: jax.ShapeDtypeStruct((batch, *shape), dtype) for k, (shape, dtype) in raw.fields.items()}
  else:
    spec = jax.ShapeDtypeStruct((batch, *raw.shape), raw.dtype)
  weights = jax.tree.map(jnp.asarray, weights)
  return jax.export.export(jax.jit(lambda inputs: fn(weights, inputs)), platforms=platforms)(spec)


def precision_variant(source: Source, name: str, raw: inference.RawInput):
  """(forward, weights, compute dtype, notes) of `name`: f32, bf16 or int8 (calibrated on the first
  CALIBRATION_EXAMPLES training examples, preprocessed as the program does)."""
  calibration = None
  if name == "int8":
    inputs, _ = raw_split(source, raw, "train")
    sample = jax.tree.map(lambda a: a[:CALIBRATION_EXAMPLES], inputs)
    prepare = jax.jit(lambda x: inference.preprocess(x, raw, source.problem.adaptation, source.standardization))
    calibration = [sample if raw.fields is not None else np.asarray(prepare(b)) for b in _batches(sample, 256)]
  (variant, *_), _ = precision_variants.build_variants(
    source.model, source.params, [name], calibration_inputs=calibration
  )
  dtype = jnp.bfloat16 if name == "bf16" else jnp.float32
  return variant.forward, variant.weights, dtype, variant.notes


def export_run(
  workdir: str,
  out: str,
  *,
  precision: str = "f32",
  checkpoint: str = "best",
  max_accuracy_drop: float = 0.01,
  overwrite: bool = False,
) -> dict:
  """Exports the run (or seeds study) in `workdir` to `out`; returns the model card."""
  _check_choices(precision, checkpoint, max_accuracy_drop)
  _check_out(out, overwrite)
  compile_cache.enable()
  start = time.perf_counter()
  runs = study_runs(workdir)
  sources = [Source(w, checkpoint) for w in runs]
  source, raw = sources[0], raw_input(sources[0])
  eval_inputs, eval_labels = raw_split(source, raw, "eval")
  if len(sources) > 1:
    exported, evaluation = _export_ensemble(sources, raw, eval_inputs, eval_labels)
    notes = []
  else:
    exported, evaluation, notes = export_single(source, raw, precision, eval_inputs, eval_labels, max_accuracy_drop)
  evaluation["split"] = source.config.data.eval_split
  model_card = card.build(
    sources, raw, evaluation=evaluation, precision=precision, notes=notes, platforms=list(exported.platforms)
  )
  model_card["export_seconds"] = round(time.perf_counter() - start, 3)
  _write(out, exported.serialize(), model_card)
  return model_card


def export_single(source: Source, raw, precision: str, eval_inputs, eval_labels, max_drop: float):
  f32 = lower(source.inference(_eval_forward(source.model), raw), source.params, raw)
  reference = metric(source.problem, run_program(f32, eval_inputs), eval_labels)
  if precision == "f32":
    return f32, {"f32": reference, "artifact": reference}, []
  forward, weights, dtype, notes = precision_variant(source, precision, raw)
  exported = lower(source.inference(forward, raw, compute_dtype=dtype), weights, raw)
  measured = metric(source.problem, run_program(exported, eval_inputs), eval_labels)
  change = measured["value"] - reference["value"]
  drop = -change if reference["name"] == "accuracy" else change / max(abs(reference["value"]), 1e-12)
  if drop > max_drop:
    raise ConfigError(
      f"--precision={precision} drops {reference['name']} on the eval split from {reference['value']:.4f} (f32) "
      f"to {measured['value']:.4f}, more than --max_accuracy_drop={max_drop}; keep f32 or allow a larger drop"
    )
  return exported, {"f32": reference, "artifact": measured, "change_vs_f32": change}, notes


def _eval_forward(model):
  return lambda weights, x: model.apply({"params": weights}, x, train=False)


def _export_ensemble(sources: list[Source], raw, eval_inputs, eval_labels):
  """Every seed's parameters stacked; one vmapped program returning the seeds' mean and std."""
  first = sources[0]
  scalings = [None if s.standardization is None else s.standardization.to_json() for s in sources]
  if any(scaling != scalings[0] for scaling in scalings):
    raise ConfigError(
      f"the seeds of {os.path.dirname(first.workdir)} were trained on differently standardized features (their data "
      "stream varied the training split); one program cannot replay them all: export each seed's workdir alone"
    )
  single = first.inference(_eval_forward(first.model), raw)
  stacked = jax.tree.map(lambda *leaves: np.stack([np.asarray(x) for x in leaves]), *[s.params for s in sources])
  exported = lower(inference.ensemble_fn(single), stacked, raw)
  outputs = run_program(exported, eval_inputs)
  ensemble = metric(first.problem, outputs, eval_labels)
  seeds = []
  votes = []
  each_program = jax.jit(jax.vmap(single, in_axes=(0, None)))
  for batch in _batches(eval_inputs, EVAL_BATCH):
    each = jax.device_get(each_program(stacked, batch))
    votes.append(next(iter(each.values())))
  per_seed = np.concatenate(votes, axis=1)  # [seeds, n, ...]
  name = "probabilities" if first.problem.kind != "regression" else "value"
  for values in per_seed:
    seeds.append(metric(first.problem, {name: values}, eval_labels)["value"])
  evaluation = {"artifact": ensemble, "seeds": seeds, "seeds_mean": float(np.mean(seeds))}
  if name == "probabilities":
    predicted = per_seed.argmax(-1)  # [seeds, n]
    evaluation["disagreement_share"] = float((predicted != predicted[:1]).any(axis=0).mean())
  return exported, evaluation


def study_runs(workdir: str) -> list[str]:
  """[workdir] for a run; every seed's workdir (first sweep) for a `jaxflow seeds` study."""
  report_path = os.path.join(workdir, "report.json")
  if os.path.exists(os.path.join(workdir, "config.json")) or not os.path.exists(report_path):
    return [workdir]
  report = workdir_files.read_json(report_path)
  sweeps = report.get("sweeps") or []
  if not sweeps:
    raise ConfigError(f"workdir {workdir}: report.json lists no sweeps; export one run's workdir instead")
  name = sweeps[0]["name"]
  runs = sorted(
    d for d in glob.glob(os.path.join(workdir, name, "seed_*")) if os.path.isdir(os.path.join(d, "checkpoints"))
  )
  if not runs:
    raise ConfigError(f"workdir {workdir}: sweep {name!r} has no trained seed (no {name}/seed_*/checkpoints)")
  return runs


def _check_choices(precision: str, checkpoint: str, max_drop) -> None:
  if precision not in PRECISIONS:
    raise ConfigError(f"--precision={precision!r} is not known; allowed: {', '.join(PRECISIONS)}")
  if checkpoint not in CHECKPOINTS:
    raise ConfigError(f"--checkpoint={checkpoint!r} is not known; allowed: {', '.join(CHECKPOINTS)}")
  if not (isinstance(max_drop, (int, float)) and 0 <= max_drop <= 1):
    raise ConfigError(f"--max_accuracy_drop={max_drop!r} must be a number in [0, 1], e.g. 0.01 (one point)")


def _check_out(out: str, overwrite: bool) -> None:
  if not out:
    raise ConfigError("--out is required: the folder to write the model to, e.g. --out=models/digits_cnn")
  if os.path.isdir(out) and os.listdir(out) and not overwrite:
    raise ConfigError(f"--out={out} exists and is not empty; pass --overwrite to replace it, or choose another folder")
  if os.path.exists(out) and not os.path.isdir(out):
    raise ConfigError(f"--out={out} is a file; give a folder")


def _write(out: str, program: bytes, model_card: dict) -> None:
  """The artifact's files in a temporary sibling folder, then renamed to `out` (the old one removed last)."""
  parent = os.path.dirname(os.path.abspath(out))
  os.makedirs(parent, exist_ok=True)
  staging = tempfile.mkdtemp(prefix=".jaxflow_export_", dir=parent)
  try:
    with open(os.path.join(staging, artifact.PROGRAM_FILE), "wb") as f:
      f.write(program)
    workdir_files.write_json(os.path.join(staging, artifact.CARD_JSON), model_card)
    workdir_files.write_text(os.path.join(staging, artifact.CARD_MARKDOWN), card.markdown(model_card))
    if os.path.isdir(out):
      old = tempfile.mkdtemp(prefix=".jaxflow_old_", dir=parent)
      os.rename(out, os.path.join(old, "model"))
      os.rename(staging, out)
      shutil.rmtree(old)
    else:
      os.rename(staging, out)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise
