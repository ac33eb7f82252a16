"""The model card beside an exported program: what goes in, what comes out, where it came from, how good.

JSON for programs (`artifact.load_model`, `predict`, `serve`'s GET /model) and Markdown for people, both
from one dict. `format_version` and `versions` are what a later jaxflow checks before loading.
"""

from __future__ import annotations

import datetime
import importlib.metadata

import jax

from jaxflow.config import config_hash
from jaxflow.deploy import artifact
from jaxflow.deploy.inference import RawInput, output_names
from jaxflow.training.state import params_sha256


def _version(package: str) -> str | None:
  try:
    return importlib.metadata.version(package)
  except importlib.metadata.PackageNotFoundError:
    return None


def _input(raw: RawInput, problem, standardization=None) -> dict:
  if raw.fields is not None:
    fields = {k: {"shape": list(shape), "dtype": dtype} for k, (shape, dtype) in raw.fields.items()}
    return {"name": raw.name, "fields": fields, "range": None, "preprocessing": "none (fed to the model as given)"}
  adaptation = problem.adaptation
  return {
    "name": raw.name,
    "shape": list(raw.shape),
    "dtype": raw.dtype,
    "range": [0, 255] if raw.scaled else None,
    "preprocessing": {
      "scale": "x / 255 (float32)" if raw.scaled else None,
      "resize": list(adaptation.resize) if adaptation.resize else None,
      "grayscale": bool(adaptation.grayscale),
      "standardize": standardization.to_json() if standardization is not None else None,
      "model_input_shape": list(problem.input_shape),
    },
    **({"feature_names": list(problem.feature_names)} if problem.feature_names else {}),
  }


def _output(problem, class_names, ensemble: bool) -> dict:
  (name,) = output_names(problem)
  width = problem.output_dim if problem.kind != "binary" else 2
  meaning = {
    "multiclass": "softmax probability of each class",
    "binary": "[P(negative), P(positive)]: the sigmoid of the model's one logit",
    "regression": "the predicted value(s)",
  }[problem.kind]
  out = {"name": name, "shape": [width], "meaning": meaning, "class_names": class_names}
  if ensemble:
    out["std_name"] = f"std_{name}"
    out["ensemble"] = f"the mean over the seeds; std_{name}: the across-seed standard deviation per column"
  return out


def _class_names(source) -> list[str] | None:
  """The problem's own class names (data.problem.target_class_names): one home for what a class is called."""
  names = source.problem.class_names
  return list(names) if names else None


def build(sources: list, raw: RawInput, *, evaluation: dict, precision: str, notes: list, platforms: list) -> dict:
  first = sources[0]
  runs = [
    {
      "workdir": s.workdir,
      "checkpoint": s.which,
      "step": s.step,
      "params_sha256": params_sha256(s.params),
      "config_hash": config_hash(s.config),
      "eval_metrics": (s.summary.get("final") or {}).get("eval"),
    }
    for s in sources
  ]
  return {
    "format_version": artifact.FORMAT_VERSION,
    "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "problem": {"kind": first.problem.kind, "dataset": first.config.data.name, "model": first.config.model.name},
    "input": _input(raw, first.problem, first.standardization),
    "output": _output(first.problem, _class_names(first), ensemble=len(sources) > 1),
    "source": runs[0] if len(runs) == 1 else {"seeds": runs},
    "precision": precision,
    "precision_notes": notes,
    "evaluation": evaluation,
    "platforms": platforms,
    "versions": {"jaxflow": _version("jaxflow"), "jax": jax.__version__, "jaxlib": _version("jaxlib")},
  }


def _preprocessing_text(preprocessing) -> str:
  if not isinstance(preprocessing, dict):
    return str(preprocessing)
  shown = {k: v for k, v in preprocessing.items() if v not in (None, False)}
  if shown.get("standardize"):
    shown["standardize"] = f"(x - mean) / std per feature, {len(shown['standardize']['mean'])} features (see the JSON)"
  return ", ".join(f"{k}: {v}" for k, v in shown.items())


def markdown(card: dict) -> str:
  inp, out, ev = card["input"], card["output"], card["evaluation"]
  shape = f"[batch, {', '.join(map(str, inp['shape']))}] {inp['dtype']}" if "shape" in inp else str(inp["fields"])
  artifact_metric = ev["artifact"]
  lines = [
    f"# Model card: {card['problem']['model']} on {card['problem']['dataset']} ({card['problem']['kind']})",
    "",
    f"- **Input** `{inp['name']}`: {shape}"
    + (f", values {inp['range'][0]}..{inp['range'][1]}" if inp["range"] else ""),
    f"- **Preprocessing in the program**: {_preprocessing_text(inp['preprocessing'])}",
    f"- **Output** `{out['name']}` [batch, {out['shape'][0]}]: {out['meaning']}",
    f"- **Classes**: {', '.join(out['class_names'])}" if out.get("class_names") else "- **Classes**: none",
    f"- **Precision**: {card['precision']}"
    + (f" ({'; '.join(card['precision_notes'])})" if card["precision_notes"] else ""),
    f"- **Eval split** `{ev.get('split')}`: {artifact_metric['name']} {artifact_metric['value']:.4f} "
    f"over {artifact_metric['examples']} examples",
  ]
  if "change_vs_f32" in ev:
    lines.append(f"- **Change against f32**: {ev['change_vs_f32']:+.4f} (f32: {ev['f32']['value']:.4f})")
  if "seeds" in ev:
    lines.append(
      f"- **Ensemble of {len(ev['seeds'])} seeds**: {artifact_metric['value']:.4f}; the seeds' mean "
      f"{ev['seeds_mean']:.4f}"
      + (f"; seeds disagree on {ev['disagreement_share']:.1%} of the examples" if "disagreement_share" in ev else "")
    )
  source = card["source"]
  if "seeds" in source:
    lines.append(f"- **Source**: {len(source['seeds'])} seeds of {source['seeds'][0]['workdir']} and its siblings")
  else:
    lines.append(
      f"- **Source**: {source['workdir']}, {source['checkpoint']} checkpoint step {source['step']}, "
      f"params_sha256 {source['params_sha256'][:16]}..."
    )
  lines += [
    f"- **Platforms**: {', '.join(card['platforms'])}",
    f"- **Versions**: {', '.join(f'{k} {v}' for k, v in card['versions'].items())}; format {card['format_version']}",
    "",
    "Load it with jax and numpy alone: `jaxflow.load_model(DIR)(inputs)`; or `jaxflow predict --model=DIR FILES`.",
    "",
  ]
  return "\n".join(lines)
