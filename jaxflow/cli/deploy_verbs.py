"""The verbs that take a trained run or an exported model instead of a config: export, predict, serve.

Each is (usage, help, define its flags, run); `main` parses them the way it parses `explain`'s. Their
library modules load when the verb runs (jax and the model stack are 1-2 s of imports), each import
saying so on its line.
"""

from __future__ import annotations

import contextlib
import json
import sys

from absl import flags

from jaxflow.config import ConfigError


@contextlib.contextmanager
def _artifact_errors():
  """An artifact's one-line errors (jaxflow.deploy.ArtifactError) end the command like bad input: exit 2."""
  from jaxflow.deploy.artifact import ArtifactError  # deferred: loads jax

  try:
    yield
  except ArtifactError as e:
    raise ConfigError(str(e)) from None


def define_export(fv: flags.FlagValues) -> None:
  flags.DEFINE_string(
    "workdir", None, "a trained run's workdir, or a `jaxflow seeds` study's (one ensemble)", flag_values=fv
  )
  flags.DEFINE_string("out", None, "the folder to write the model to, e.g. models/digits_cnn", flag_values=fv)
  flags.DEFINE_string("precision", "f32", "f32, bf16 or int8 (calibrated on the training split)", flag_values=fv)
  flags.DEFINE_string("checkpoint", "best", "best or latest", flag_values=fv)
  flags.DEFINE_float(
    "max_accuracy_drop",
    0.01,
    "refuse a bf16/int8 export whose eval accuracy drops more than this against f32 (regression: relative MAE rise)",
    flag_values=fv,
  )
  flags.DEFINE_boolean("overwrite", False, "replace a non-empty --out folder", flag_values=fv)


def run_export(fv: flags.FlagValues) -> int:
  from jaxflow.deploy.export import export_run  # deferred: loads jax, flax, orbax, tfds

  if not fv.workdir:
    raise ConfigError("--workdir is required: a trained run's workdir, e.g. --workdir=runs/digits_cnn")
  card = export_run(
    fv.workdir,
    fv.out,
    precision=fv.precision,
    checkpoint=fv.checkpoint,
    max_accuracy_drop=fv.max_accuracy_drop,
    overwrite=fv.overwrite,
  )
  metric = card["evaluation"]["artifact"]
  print(
    json.dumps(
      {
        "out": fv.out,
        "precision": card["precision"],
        metric["name"]: round(metric["value"], 4),
        "change_vs_f32": card["evaluation"].get("change_vs_f32"),
        "seeds": len(card["source"]["seeds"]) if "seeds" in card["source"] else 1,
        "export_seconds": card["export_seconds"],
      }
    )
  )
  return 0


def define_predict(fv: flags.FlagValues) -> None:
  flags.DEFINE_string("model", None, "an exported model's folder (jaxflow export --out)", flag_values=fv)
  flags.DEFINE_string("out", None, "write the predictions here (.csv or .json); default: stdout", flag_values=fv)
  flags.DEFINE_string("format", None, "csv or json (default: from --out's suffix, else csv)", flag_values=fv)
  flags.DEFINE_integer("batch_size", 256, "inputs per call of the model", flag_values=fv)


def run_predict(fv: flags.FlagValues, inputs: list[str]) -> int:
  from jaxflow.deploy.predict import predict_files  # deferred: loads jax

  if not fv.model:
    raise ConfigError("--model is required: an exported model's folder, e.g. --model=models/digits_cnn")
  with _artifact_errors():
    predict_files(fv.model, inputs, out=fv.out, fmt=fv.format, batch_size=fv.batch_size, stdout=sys.stdout)
  return 0


def define_serve(fv: flags.FlagValues) -> None:
  flags.DEFINE_string("model", None, "an exported model's folder (jaxflow export --out)", flag_values=fv)
  flags.DEFINE_string("host", "127.0.0.1", "address to listen on", flag_values=fv)
  flags.DEFINE_integer("port", 8080, "port to listen on", flag_values=fv)
  flags.DEFINE_string("batch_sizes", "1,8,32,128", "the precompiled batch sizes requests are padded to", flag_values=fv)
  flags.DEFINE_float(
    "batch_window_ms", 2.0, "how long a request waits for others to batch with (0: no batching)", flag_values=fv
  )


def run_serve(fv: flags.FlagValues) -> int:
  from jaxflow.deploy.serve import serve  # deferred: loads jax and the HTTP server

  if not fv.model:
    raise ConfigError("--model is required: an exported model's folder, e.g. --model=models/digits_cnn")
  with _artifact_errors():
    serve(fv.model, host=fv.host, port=fv.port, batch_sizes=fv.batch_sizes, batch_window_ms=fv.batch_window_ms)
  return 0


def define_profile_model(fv: flags.FlagValues) -> None:
  flags.DEFINE_string("model", None, "an exported model's folder (jaxflow export --out)", flag_values=fv)
  flags.DEFINE_string("workdir", None, "where report.json and report.md go", flag_values=fv)
  flags.DEFINE_string("batch_sizes", "1,32,256", "batch sizes to time, comma-separated", flag_values=fv)
  flags.DEFINE_string("precisions", "bf16,int8", "precisions to export and time beside f32", flag_values=fv)
  flags.DEFINE_boolean("quiet", False, "no progress lines", flag_values=fv)


def run_profile_model(fv: flags.FlagValues) -> int:
  from jaxflow.profiler.model_profile import profile_model  # deferred: loads jax, flax, orbax

  if not fv.model or not fv.workdir:
    raise ConfigError("--model and --workdir are required, e.g. --model=models/digits_cnn --workdir=runs/prof_model")
  precisions = tuple(p.strip() for p in fv.precisions.split(",") if p.strip() and p.strip() != "f32")
  bad = [p for p in precisions if p not in ("bf16", "int8")]
  if bad:
    raise ConfigError(f"--precisions={fv.precisions!r}: {bad[0]!r} is not known; allowed: f32, bf16, int8")
  report = profile_model(fv.model, fv.workdir, batch_sizes=fv.batch_sizes, precisions=precisions, quiet=fv.quiet)
  print(json.dumps({"workdir": fv.workdir, "recommendation": report["recommendation"]}, default=str)[:2000])
  return 0


# `jaxflow profile --model=DIR`: the profile verb, for an exported model instead of a config.
PROFILE_MODEL = (
  "jaxflow profile --model=DIR --workdir=OUT [--batch_sizes=1,32,256] [--precisions=bf16,int8]",
  "which hardware for inference: the exported model timed on every device, beside the training jit and op by op",
  define_profile_model,
  lambda fv, _: run_profile_model(fv),
  False,
)

# verb -> (usage, help, define its flags, run(fv, positional arguments), takes positional arguments)
DEPLOY_VERBS: dict[str, tuple] = {
  "export": (
    "jaxflow export --workdir=RUN --out=DIR [--precision=f32|bf16|int8] [--checkpoint=best|latest]",
    "export a trained run (or a seeds study, as one ensemble) as a jax.export program + model card",
    define_export,
    lambda fv, _: run_export(fv),
    False,
  ),
  "predict": (
    "jaxflow predict --model=DIR [--out=FILE.csv|.json] INPUTS...",
    "predict with an exported model: image files, folders of images, CSV rows, NPZ arrays",
    define_predict,
    run_predict,
    True,
  ),
  "serve": (
    "jaxflow serve --model=DIR [--port=8080]",
    "serve an exported model over HTTP: POST /predict, GET /healthz, GET /model",
    define_serve,
    lambda fv, _: run_serve(fv),
    False,
  ),
}
