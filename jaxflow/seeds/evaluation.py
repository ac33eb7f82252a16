"""Per-example predictions of every seed of a sweep on the eval split, from each seed's trained parameters.

The seeds runner's training reports only metric sums (`eval_step`); disagreement between seeds and the
ensemble need each example's probabilities. So after a sweep trains (or a rerun finds it finished), each
seed's final parameters are read back from its own checkpoint — the best one when early stopping restored
it (summary.json's `restored_best_step`), else the latest — verified against summary.json's params_sha256,
and ONE forward pass over the eval split gives its probabilities: one program over the stacked parameters
when the sweep was vmapped (`vmap`, `devices`), one call per seed when it ran sequentially (a vmapped
convolution is a grouped one, slow on XLA:CPU). Nothing is trained again.

The eval split is the one training evaluated on (`run.assemble.device_data`, shared with training through
the study's `Compiled`), so the accuracy computed here is the summary's final eval accuracy.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxflow import models, rng
from jaxflow.data import registry
from jaxflow.run import assemble
from jaxflow.seeds.sweeps import seed_config
from jaxflow.training import checkpoints
from jaxflow.training.run_axis import stack
from jaxflow.training.state import params_sha256


@dataclasses.dataclass
class SweepPredictions:
  """The eval split's labels and inputs, and every finished seed's probabilities on it."""

  seed_indices: list[int]  # the sweep's seed numbers that finished (rows of `probabilities`)
  probabilities: np.ndarray  # [S, N, C] float32
  labels: np.ndarray  # [N] int
  inputs: object  # [N, ...] host arrays as the model reads them (a pytree for sequence inputs)
  verified: list[bool]  # each seed's loaded params hash to its summary's params_sha256
  one_bit_sites: list[dict | None]  # per seed: which initial weight one_bit flipped (None: not a one_bit run)


def _eval_split(config, problem, compiled) -> tuple[object, np.ndarray, dict]:
  """(inputs [N, ...], labels [N], the device eval batches) of `config`'s eval split, padding removed."""
  data = assemble.device_data(config, problem, rng.streams(config), cache=compiled.data)
  batches = data.eval_batches
  mask = np.asarray(batches["mask"]).reshape(-1) > 0
  flat = lambda a: np.asarray(a).reshape(-1, *np.shape(a)[2:])[mask]  # noqa: E731
  return jax.tree.map(flat, batches["inputs"]), flat(batches["labels"]), batches


def _final_params(workdir: str, summary: dict):
  which = checkpoints.BEST if summary.get("restored_best_step") is not None else checkpoints.LATEST
  params = checkpoints.read_run_params(workdir, which=which, fallback=True)[0]
  return params, params_sha256(params) == summary.get("params_sha256")


def _probabilities_fn(model, kind: str, *, vmapped: bool):
  """A jitted (params, inputs [b, ...]) -> probabilities [b, C] (or [S, b, C] over stacked params)."""

  def forward(params, inputs):
    outputs = model.apply({"params": params}, inputs, train=False)
    if kind == "binary":
      p = jax.nn.sigmoid(outputs.reshape(outputs.shape[0]))
      return jnp.stack([1 - p, p], axis=-1)
    return jax.nn.softmax(outputs, axis=-1)

  return jax.jit(jax.vmap(forward, in_axes=(0, None)) if vmapped else forward)


def _forward(fn, params, batches: dict, mask: np.ndarray) -> np.ndarray:
  """Probabilities over every eval batch, padding rows dropped: [N, C] (or [S, N, C])."""
  num = np.shape(batches["mask"])[0]
  outs = [np.asarray(fn(params, jax.tree.map(lambda a, i=i: a[i], batches["inputs"]))) for i in range(num)]
  out = np.concatenate(outs, axis=-2)
  return out[..., mask, :]


def predict_sweep(config, result, problem, compiled: assemble.Compiled, programs: dict) -> SweepPredictions | str:
  """The sweep's per-seed eval probabilities, or a one-line reason why there are none. `programs`: the study's
  jitted forward passes (one vmapped, one single), kept across its sweeps so each compiles once."""
  if problem.kind == "regression":
    return "a regression problem: no class predictions to compare"
  if registry.dataset_kind(config.data.name).graphs:  # batches of graphs, built on the host: not covered yet
    return "a graph dataset: the example-wise view covers array datasets only (per-node predictions: not yet)"
  finished = [i for i, s in enumerate(result.summaries) if s.get("status") == "completed"]
  if len(finished) < 2:
    return f"{len(finished)} finished seed(s): agreement needs at least 2"
  configs = [seed_config(config, i, result.vary) for i in finished]
  inputs, labels, batches = _eval_split(configs[0], problem, compiled)
  for c in configs[1:]:  # a varied data stream may change what is evaluated (a generated dataset)
    other_inputs, other_labels, _ = _eval_split(c, problem, compiled)
    same = np.array_equal(other_labels, labels) and all(
      np.array_equal(a, b) for a, b in zip(jax.tree.leaves(other_inputs), jax.tree.leaves(inputs))
    )
    if not same:
      return f"the seeds' eval splits differ (sweep {result.name!r} varies what is evaluated): no example-wise view"
  loaded = [_final_params(result.workdirs[i], result.summaries[i]) for i in finished]
  params = [p for p, _ in loaded]
  mask = np.asarray(batches["mask"]).reshape(-1) > 0
  vmapped = result.mode in ("vmap", "devices")
  if vmapped not in programs:
    model = programs.setdefault("model", models.create_model(config.model, output_dim=problem.output_dim))
    programs[vmapped] = _probabilities_fn(model, problem.kind, vmapped=vmapped)
  if vmapped:
    probabilities = _forward(programs[vmapped], stack(params), batches, mask)
  else:
    probabilities = np.stack([_forward(programs[vmapped], p, batches, mask) for p in params])
  sites = [
    rng.one_bit_site(rng.one_bit_seed(c), p) if rng.one_bit_seed(c) is not None else None
    for c, p in zip(configs, params)
  ]
  return SweepPredictions(
    seed_indices=finished,
    probabilities=probabilities.astype(np.float32),
    labels=labels.astype(np.int64),
    inputs=inputs,
    verified=[ok for _, ok in loaded],
    one_bit_sites=sites,
  )
