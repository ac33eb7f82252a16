"""An exported model, loaded with jax and numpy alone: `load_model(DIR)` returns a callable `Model`.

Why this module imports nothing else: a deployed model must run where jaxflow's training stack (flax,
optax, orbax, tensorflow-datasets) is absent or broken. The artifact is a `jax.export` program (serialized
StableHLO: preprocessing, the model in eval mode with its weights as constants, the output transform) and a
model card that says what goes in and what comes out; both are read here, checked, and nothing else is
needed. Version fields are checked before anything is deserialized, so an artifact from a newer jaxflow is
refused in one line instead of failing somewhere inside jax.
"""

from __future__ import annotations

import json
import os

import jax
import numpy as np

FORMAT_VERSION = 1  # bump when the card or the program's calling convention changes incompatibly
PROGRAM_FILE = "model.jax_export"
CARD_JSON = "model_card.json"
CARD_MARKDOWN = "MODEL_CARD.md"


class ArtifactError(ValueError):
  """An artifact that cannot be read, or inputs it cannot take: the message is one line for the user."""


def read_card(directory: str) -> dict:
  """The model card of the artifact in `directory`, checked to be one this jaxflow can run."""
  path = os.path.join(directory, CARD_JSON)
  if not os.path.isdir(directory):
    raise ArtifactError(f"--model={directory}: no such folder (make one with jaxflow export --workdir=RUN --out=DIR)")
  if not os.path.exists(path):
    raise ArtifactError(f"--model={directory} has no {CARD_JSON}: not a jaxflow export (jaxflow export --out=DIR)")
  try:
    with open(path) as f:
      card = json.load(f)
  except (OSError, ValueError) as e:
    raise ArtifactError(f"{path} is not readable JSON ({type(e).__name__}): export the model again") from None
  version = card.get("format_version")
  if not isinstance(version, int):
    raise ArtifactError(f"{path} has no integer format_version: not a jaxflow model card")
  if version > FORMAT_VERSION:
    raise ArtifactError(
      f"{directory} was exported by jaxflow {card.get('versions', {}).get('jaxflow', '?')} in format {version}; "
      f"this jaxflow reads formats up to {FORMAT_VERSION}: upgrade jaxflow to load it"
    )
  return card


class Model:
  """A loaded artifact: `model(inputs)` -> {output name: numpy array}, one row per input row.

  `inputs` is a numpy array [batch, *card input shape] (or, for a model whose input is a dict, a dict of
  them). Each distinct batch size compiles the program once; `serve` pads to a few fixed sizes for that
  reason.
  """

  def __init__(self, directory: str, card: dict, exported):
    self.directory = directory
    self.card = card
    self.exported = exported
    self._call = jax.jit(exported.call)

  @property
  def kind(self) -> str:
    return self.card["problem"]["kind"]

  @property
  def class_names(self) -> list[str] | None:
    return self.card["output"].get("class_names")

  def check_inputs(self, inputs, source: str = "inputs"):
    """`inputs` as the program takes them (dtype converted where no value changes), or ArtifactError
    naming `source`, the shape and dtype found and those expected."""
    spec = self.card["input"]
    if spec.get("fields"):  # a dict input, e.g. {"sequence", "lengths"}
      if not isinstance(inputs, dict) or set(inputs) != set(spec["fields"]):
        raise ArtifactError(f"{source}: expected a dict with keys {sorted(spec['fields'])}")
      return {k: _checked(inputs[k], spec["fields"][k], f"{source}[{k!r}]") for k in sorted(inputs)}
    return _checked(inputs, spec, source)

  def __call__(self, inputs) -> dict[str, np.ndarray]:
    outputs = self._call(self.check_inputs(inputs))
    return {name: np.asarray(value) for name, value in outputs.items()}


def _expected(shape: tuple, dtype: np.dtype) -> str:
  return f"[batch, {', '.join(map(str, shape))}] {dtype.name}" if shape else f"[batch] {dtype.name}"


def _checked(array, spec: dict, source: str) -> np.ndarray:
  array = np.asarray(array)
  shape, dtype = tuple(spec["shape"]), np.dtype(spec["dtype"])
  if array.ndim != len(shape) + 1 or tuple(array.shape[1:]) != shape:
    raise ArtifactError(f"{source}: shape {list(array.shape)}; the model takes {_expected(shape, dtype)}")
  if array.dtype != dtype:
    # Integer inputs (pixels, lengths) are taken from any dtype whose values they hold exactly (no wrapping,
    # no rounding); float inputs from any number.
    numeric = np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_
    with np.errstate(invalid="ignore", over="ignore"):
      same_values = array.astype(dtype) if numeric else None
    if np.issubdtype(dtype, np.integer):
      exact = numeric and np.array_equal(same_values.astype(np.float64), array.astype(np.float64))
    else:
      exact = numeric
    if not exact:
      low, high = spec.get("range") or (None, None)
      hint = f" (values {low}..{high})" if low is not None else ""
      raise ArtifactError(f"{source}: dtype {array.dtype.name}; the model takes {_expected(shape, dtype)}{hint}")
    array = same_values
  return array


def load_model(directory: str) -> Model:
  """The artifact `jaxflow export` wrote to `directory`, ready to call (see `Model`)."""
  card = read_card(directory)
  path = os.path.join(directory, PROGRAM_FILE)
  try:
    with open(path, "rb") as f:
      blob = f.read()
  except OSError as e:
    raise ArtifactError(f"{path}: {e.strerror}; export the model again") from None
  try:
    exported = jax.export.deserialize(bytearray(blob))
  except Exception as e:  # a truncated file, or a serialization version this jax cannot read
    raise ArtifactError(
      f"{path} cannot be deserialized by jax {jax.__version__} ({type(e).__name__}: {' '.join(str(e).split())[:160]})"
    ) from None
  platform = jax.default_backend()
  if platform == "gpu":  # jax.export names GPU platforms by their runtime
    version = getattr(jax.devices()[0].client, "platform_version", "") or ""
    platform = "rocm" if "rocm" in version.lower() else "cuda"
  if platform not in exported.platforms:
    raise ArtifactError(
      f"{directory} was lowered for {', '.join(exported.platforms)}; this machine runs {platform}: "
      "export it again with that platform"
    )
  return Model(directory, card, exported)
