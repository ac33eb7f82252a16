"""`jaxflow predict --model=DIR INPUTS...`: one prediction per input, as CSV or JSON, to stdout or `--out`.

Why the whole answer is computed before a byte is written: an error (a bad file, a bad flag) must leave
nothing behind that looks like a result, so inputs are all read and checked first (`inputs.read_inputs`),
the model runs, and the text goes out in one write; `--out` is written to a temporary file beside it and
renamed into place, so a reader never sees half a file and a failed run leaves the old one alone.

Rows: classification gives `input, predicted, probability, p_<class>...` (the class name, its probability,
every class's probability; an ensemble adds `std_<class>...`, the across-seed standard deviation);
regression gives `input, value` (`value_0...` for several outputs; an ensemble adds `std`/`std_0...`).
JSON is a list of objects with the probabilities as a {class: p} dict; `predict_files` returns those
objects too.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
from typing import TextIO

import numpy as np

from jaxflow.deploy.artifact import ArtifactError, Model, load_model
from jaxflow.deploy.inputs import read_inputs

FORMATS = ("csv", "json")


def predict_files(
  model_dir: str,
  paths: list[str],
  *,
  out: str | None = None,
  fmt: str | None = None,
  batch_size: int = 256,
  stdout: TextIO | None = None,
) -> list[dict]:
  """Predict every input in `paths` with the model exported to `model_dir` and write the rows to `out`
  (a file) or, without one, to `stdout` (None: nowhere; take the returned rows). `fmt`: csv or json
  (default: json for an `out` ending in .json, else csv). ArtifactError, with nothing written, for a bad
  flag, model or input."""
  fmt = output_format(out, fmt)
  if batch_size < 1:
    raise ArtifactError(f"--batch_size={batch_size}: must be at least 1")
  model = load_model(model_dir)
  inputs, ids = read_inputs(paths, model.card)
  rows = prediction_rows(model.card, ids, run_batches(model, inputs, batch_size))
  text = render(rows, fmt)
  if out:
    write_atomically(out, text)
  elif stdout is not None:
    stdout.write(text)
    stdout.flush()
  return rows


def output_format(out: str | None, fmt: str | None) -> str:
  """`fmt` checked, or the one `out`'s suffix says; and `out` checked to be a file we can create."""
  if fmt is None:
    fmt = "json" if out and out.lower().endswith(".json") else "csv"
  if fmt.lower() not in FORMATS:
    raise ArtifactError(f"--format={fmt}: allowed {', '.join(FORMATS)}")
  if out:
    folder = os.path.dirname(os.path.abspath(out))
    if os.path.isdir(out):
      raise ArtifactError(f"--out={out} is a folder; give a file, e.g. --out=predictions.{fmt.lower()}")
    if not os.path.isdir(folder):
      raise ArtifactError(f"--out={out}: no such folder {folder}")
  return fmt.lower()


def batch_sizes(n: int, batch_size: int) -> list[tuple[int, int]]:
  """(start, padded size) of each call: full batches, then the rest padded up to a power of two (at most
  `batch_size`), so that calls with any number of inputs compile a few programs, not one per count."""
  calls = [(start, batch_size) for start in range(0, n - n % batch_size, batch_size)]
  rest = n % batch_size
  if rest:
    calls.append((n - rest, min(batch_size, 1 << (rest - 1).bit_length())))
  return calls


def run_batches(model: Model, inputs: np.ndarray, batch_size: int) -> dict[str, np.ndarray]:
  """{output name: [n, ...]}: the model on `inputs` in batches, the last one padded with copies of its
  last row (a valid input; those rows' outputs are dropped)."""
  outputs: dict[str, list[np.ndarray]] = {}
  for start, size in batch_sizes(len(inputs), batch_size):
    chunk = inputs[start : start + size]
    real = len(chunk)
    if real < size:
      chunk = np.concatenate([chunk, np.repeat(chunk[-1:], size - real, axis=0)])
    for name, values in model(chunk).items():
      outputs.setdefault(name, []).append(values[:real])
  return {name: np.concatenate(parts) for name, parts in outputs.items()}


def _number(value) -> float:
  """A float32 as the shortest decimal that reads back as the same float32 (0.1, not 0.10000000149...)."""
  return float(str(np.float32(value)))


def prediction_rows(card: dict, ids: list[str], outputs: dict[str, np.ndarray]) -> list[dict]:
  """One JSON-ready dict per input, in order (module docstring); `outputs` as `Model.__call__` gives them."""
  spec = card["output"]
  values = outputs[spec["name"]].reshape(len(ids), -1)
  std_name = spec.get("std_name")
  std = outputs[std_name].reshape(len(ids), -1) if std_name else None
  rows = []
  if card["problem"]["kind"] == "regression":
    for i, input_id in enumerate(ids):
      row = {"input": input_id, "value": _values(values[i])}
      if std is not None:
        row["std"] = _values(std[i])
      rows.append(row)
    return rows
  names = spec.get("class_names") or [str(k) for k in range(values.shape[1])]
  for i, input_id in enumerate(ids):
    best = int(np.argmax(values[i]))
    row = {
      "input": input_id,
      "predicted": names[best],
      "probability": _number(values[i, best]),
      "probabilities": {name: _number(p) for name, p in zip(names, values[i])},
    }
    if std is not None:
      row["std"] = {name: _number(s) for name, s in zip(names, std[i])}
    rows.append(row)
  return rows


def _values(values: np.ndarray) -> float | list[float]:
  return _number(values[0]) if len(values) == 1 else [_number(v) for v in values]


def flat_row(row: dict) -> dict:
  """A row's CSV columns: {class: p} -> p_<class>, std {class: s} -> std_<class>, lists -> name_0..."""
  flat = {}
  for key, value in row.items():
    if isinstance(value, dict):
      prefix = "p" if key == "probabilities" else key
      flat |= {f"{prefix}_{name}": v for name, v in value.items()}
    elif isinstance(value, list):
      flat |= {f"{key}_{k}": v for k, v in enumerate(value)}
    else:
      flat[key] = value
  return flat


def render(rows: list[dict], fmt: str) -> str:
  """The rows as the text of a CSV file (a header, then one line per row) or a JSON list."""
  if fmt == "json":  # one object per line: valid JSON that grep and head still read
    return "[\n" + ",\n".join(json.dumps(row) for row in rows) + "\n]\n"
  flat = [flat_row(row) for row in rows]
  text = io.StringIO()
  writer = csv.DictWriter(text, fieldnames=list(flat[0]) if flat else ["input"], lineterminator="\n")
  writer.writeheader()
  writer.writerows(flat)
  return text.getvalue()


def write_atomically(path: str, text: str) -> None:
  """`text` into `path` by a temporary file beside it and a rename: whole or not at all. The temporary file
  is created like any other (the umask's permissions, not tempfile's owner-only ones)."""
  temporary = os.path.join(os.path.dirname(os.path.abspath(path)), f".{os.path.basename(path)}.{secrets.token_hex(4)}")
  try:
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    with os.fdopen(descriptor, "w") as f:
      f.write(text)
    os.replace(temporary, path)
  except OSError as e:
    if os.path.exists(temporary):
      os.remove(temporary)
    raise ArtifactError(f"--out={path}: cannot write ({e.strerror or e})") from None
