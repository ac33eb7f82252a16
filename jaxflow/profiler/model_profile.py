"""`jaxflow profile --model=DIR`: which hardware (and precision) to serve an exported model on.

What a user ships is the exported program, so that is what is timed, on every device jaxflow sees and at
several batch sizes, with the profiler's one protocol (`timing`: warm-up, synchronized, interleaved
rounds, medians): beside it the jit of the training code's own inference (the same math, built from the
source run: the export must cost nothing, target within +-5%) and the op-by-op baseline (no fusion, one
dispatch per primitive). Then what the post-training optimizations buy: each precision (speed next to
the accuracy change its export measured on the eval split), donating the input buffer, XLA's memory
analysis (dynamic tensor memory: arguments, outputs, temporaries), and K batches dispatched back to back
against synchronizing each (multi-stream execution). On a GPU the autotune levels are the profiler's
`multistream.profile_autotune`; elsewhere the report says why they are not measured. The report ends
with a recommendation per batch size and says what it rests on.
"""

from __future__ import annotations

import datetime
import os
import time
import warnings

import jax
import numpy as np

from jaxflow.config import ConfigError
from jaxflow.deploy import artifact, export, inference
from jaxflow.precision.variants import Variant
from jaxflow.profiler import multistream, opbyop, timing
from jaxflow.profiler.run import device_name, environment, parse_batch_sizes, profiled_devices
from jaxflow.run import compile_cache
from jaxflow.workdir import acquire_lock, write_json, write_text

SCHEMA = "jaxflow.profile_model"
MAX_ACCURACY_DROP = 0.01
STREAMS = 8
OPBYOP_MAX_BATCH = 32  # op by op is slow: measured at the small batch sizes only


def _inputs(card: dict, batch: int, count: int, seed: int = 0) -> list:
  """`count` distinct random batches of the card's input (timing does not depend on the values)."""
  rng = np.random.default_rng(seed)
  spec = card["input"]

  def one(shape, dtype):
    if np.dtype(dtype) == np.uint8:
      return rng.integers(0, 256, (batch, *shape), dtype=np.uint8)
    if np.issubdtype(np.dtype(dtype), np.integer):  # sequence lengths: one valid step each
      return np.ones((batch, *shape), dtype)
    return rng.standard_normal((batch, *shape)).astype(dtype)

  if spec.get("fields"):
    return [{k: one(f["shape"], f["dtype"]) for k, f in spec["fields"].items()} for _ in range(count)]
  return [one(spec["shape"], spec["dtype"]) for _ in range(count)]


class _RandomBatches:
  """The `batches(size, count)` of a profiler workload, drawn from the card (for multistream.profile_autotune)."""

  def __init__(self, card: dict):
    self.card = card

  def batches(self, batch_size: int, count: int) -> list:
    return _inputs(self.card, batch_size, count)


def _training_jit(source: export.Source, raw: inference.RawInput):
  """The training code's inference, jitted, the parameters an argument (what `jaxflow train` evaluates)."""
  fn = source.inference(lambda w, x: source.model.apply({"params": w}, x, train=False), raw)
  return jax.jit(fn)


def _memory(compiled) -> dict | None:
  analysis = compiled.memory_analysis()
  if analysis is None:
    return None
  fields = ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes", "generated_code_size_in_bytes")
  return {f: int(getattr(analysis, f, 0) or 0) for f in fields}


def profile_batch(programs: dict, source, card: dict, device, batch: int, protocol) -> dict:
  """Exported vs training jit vs op by op (interleaved), donation, memory, K streams at one batch size."""
  xs = [(jax.device_put(x, device),) for x in _inputs(card, batch, 4)]
  params = jax.device_put(source.params, device)
  exported_call = jax.jit(programs["f32"].call)
  training = _training_jit(source, export.raw_input(source))
  cases = {
    "exported": (exported_call, xs),
    "training_jit": (lambda x: training(params, x), xs),
  }
  for name, program in programs.items():
    if name != "f32":
      cases[f"exported_{name}"] = (jax.jit(program.call), xs)
  donated, donation_usable = _donated(programs["f32"].call, xs[0])
  if batch <= OPBYOP_MAX_BATCH:  # the training function's jaxpr, opened up (the exported one is one call)
    unfused = opbyop.OpByOp(lambda x: training(params, x), xs[0][0])
    cases["op_by_op"] = (unfused, xs[:1])
  timings = timing.time_interleaved(cases, protocol)
  # Donation consumes its input: each call gets a fresh copy, made outside the timed interval.
  donated_timing = _time_donated(donated, xs, protocol)
  medians = {name: t.median for name, t in timings.items()} | {"exported_donated": donated_timing.median}
  compiled = exported_call.lower(*xs[0]).compile()
  return {
    "batch_size": batch,
    "median_seconds": medians,
    "per_example_us": {name: 1e6 * s / batch for name, s in medians.items()},
    "exported_over_training_jit": medians["exported"] / medians["training_jit"],
    "op_by_op_over_exported": medians["op_by_op"] / medians["exported"] if "op_by_op" in medians else None,
    "memory": {"exported": _memory(compiled), "donated": _memory(donated.lower(*xs[0]).compile())},
    "donation_usable": donation_usable,
    "streams": _streams(exported_call, xs, protocol),
    "timings": {name: t.to_dict() for name, t in timings.items()} | {"exported_donated": donated_timing.to_dict()},
  }


def _donated(call, args: tuple):
  """(jit of `call` donating its input, whether XLA could reuse the input's buffer for an output): an input
  of another dtype or size than every output (uint8 pixels in, float32 probabilities out) cannot be."""
  donated = jax.jit(call, donate_argnums=0)
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    donated.lower(*args).compile()
  return donated, not any("donated buffers were not usable" in str(w.message) for w in caught)


def _time_donated(donated, xs, protocol) -> timing.Timing:
  seconds = []
  for i in range(protocol.warmup + protocol.min_repeats * 2):
    copy = jax.tree.map(lambda a: a.copy(), xs[i % len(xs)])
    jax.block_until_ready(copy)
    start = time.perf_counter()
    with warnings.catch_warnings():  # said once, in the report's donation_usable
      warnings.simplefilter("ignore")
      jax.block_until_ready(donated(*copy))
    if i >= protocol.warmup:
      seconds.append(time.perf_counter() - start)
  return timing.Timing(seconds, rotations=len(xs))


def _streams(call, xs, protocol) -> dict:
  """STREAMS batches dispatched back to back (one sync at the end) against a sync after each."""
  batches = [xs[i % len(xs)] for i in range(STREAMS)]

  def synced():
    return [jax.block_until_ready(call(*b)) for b in batches]

  def dispatched():
    return [call(*b) for b in batches]

  t = timing.time_interleaved({"synced": (synced, [()]), "dispatched": (dispatched, [()])}, protocol)
  return {
    "k": STREAMS,
    "synced_per_batch_s": t["synced"].median / STREAMS,
    "dispatched_per_batch_s": t["dispatched"].median / STREAMS,
    "gain": t["synced"].median / t["dispatched"].median,
  }


def recommend(devices: list[dict], accuracy: dict, max_drop: float = MAX_ACCURACY_DROP) -> list[dict]:
  """Per batch size: the fastest (device, precision) whose eval accuracy drop against f32 is at most
  `max_drop`, and the alternatives it beat."""
  allowed = {p for p, a in accuracy.items() if -a.get("change_vs_f32", 0.0) <= max_drop}
  sizes = sorted({b["batch_size"] for d in devices for b in d["batches"]})
  out = []
  for size in sizes:
    options = []
    for d in devices:
      for b in (b for b in d["batches"] if b["batch_size"] == size):
        for precision in allowed:
          key = "exported" if precision == "f32" else f"exported_{precision}"
          if key in b["median_seconds"]:
            options.append((b["median_seconds"][key], d["name"], precision))
    options.sort()
    seconds, device, precision = options[0]
    out.append(
      {
        "batch_size": size,
        "device": device,
        "precision": precision,
        "examples_per_second": size / seconds,
        "based_on": f"median of the interleaved timed calls of each exported program; precisions whose eval "
        f"accuracy dropped more than {max_drop} against f32 excluded ({sorted(set(accuracy) - allowed) or 'none'})",
        "alternatives": [{"device": d, "precision": p, "seconds": s} for s, d, p in options[1:]],
      }
    )
  return out


def profile_model(
  model_dir: str,
  workdir: str,
  *,
  batch_sizes: str = "1,32,256",
  precisions: tuple[str, ...] = ("bf16", "int8"),
  protocol: timing.Protocol | None = None,
  backends: tuple[str, ...] = ("cpu", "gpu", "tpu"),
  quiet: bool = False,
) -> dict:
  """Profiles the exported model in `model_dir` on every device into `workdir`; returns the report."""
  sizes = parse_batch_sizes(batch_sizes)
  try:
    card = artifact.read_card(model_dir)
    exported = artifact.load_model(model_dir).exported
  except artifact.ArtifactError as e:
    raise ConfigError(str(e)) from None
  if "seeds" in card["source"]:
    raise ConfigError(
      f"--model={model_dir} is a seeds ensemble; profile one seed's export (jaxflow export --workdir=SEED)"
    )
  compile_cache.enable()
  protocol = protocol or timing.Protocol()
  start = time.perf_counter()
  with acquire_lock(workdir, command="jaxflow profile --model"):
    source = export.Source(card["source"]["workdir"], card["source"]["checkpoint"])
    programs, accuracy = _precision_programs(source, exported, precisions)
    devices = []
    for device in profiled_devices(backends):
      with jax.default_device(device):
        batches = [profile_batch(programs, source, card, device, size, protocol) for size in sizes]
      entry = {"name": device_name(device), "platform": device.platform, "batches": batches}
      exported_variant = Variant("f32", lambda _, x: exported.call(x), {})
      entry["autotune"] = multistream.profile_autotune(
        exported_variant, _RandomBatches(card), device, max(sizes), protocol
      )
      devices.append(entry)
      if not quiet:
        print(f"jaxflow profile --model: {entry['name']} done", flush=True)
    report = {
      "schema": SCHEMA,
      "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      "model": model_dir,
      "card": card,
      "protocol": protocol.to_dict(),
      "environment": environment(),
      "accuracy": accuracy,
      "devices": devices,
      "recommendation": recommend(devices, accuracy),
      "seconds": time.perf_counter() - start,
    }
    os.makedirs(workdir, exist_ok=True)
    write_json(os.path.join(workdir, "report.json"), report)
    write_text(os.path.join(workdir, "report.md"), markdown(report))
  return report


def _precision_programs(source, exported, precisions) -> tuple[dict, dict]:
  """{precision: exported program} (f32 is the artifact itself) and each one's measured eval accuracy."""
  raw = export.raw_input(source)
  inputs, labels = export.raw_split(source, raw, "eval")
  reference = export.metric(source.problem, export.run_program(exported, inputs), labels)
  programs, accuracy = {"f32": exported}, {"f32": {"value": reference["value"], "name": reference["name"]}}
  for name in precisions:
    program, evaluation, _ = export.export_single(source, raw, name, inputs, labels, max_drop=1.0)
    programs[name] = program
    accuracy[name] = {
      "value": evaluation["artifact"]["value"],
      "name": reference["name"],
      "change_vs_f32": evaluation["change_vs_f32"],
    }
  return programs, accuracy


def markdown(report: dict) -> str:
  lines = [f"# Which hardware for {report['model']}", ""]
  precisions = ", ".join(
    f"{p} {a['value']:.4f} ({a.get('change_vs_f32', 0):+.4f})" for p, a in report["accuracy"].items()
  )
  lines += [f"Eval {next(iter(report['accuracy'].values()))['name']} by precision: {precisions}", ""]
  for d in report["devices"]:
    lines += [
      f"## {d['name']}",
      "",
      "| batch | exported ms | training jit ms | exported / jit | op by op / exported | donated ms | "
      "temp bytes | K-stream gain | " + " | ".join(f"{p} ms" for p in report["accuracy"] if p != "f32") + " |",
      "|---:|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * (len(report["accuracy"]) - 1),
    ]
    for b in d["batches"]:
      m = b["median_seconds"]
      opbyop_ratio = f"{b['op_by_op_over_exported']:.1f}x" if b["op_by_op_over_exported"] else "-"
      memory = (b["memory"]["exported"] or {}).get("temp_size_in_bytes", "-")
      others = " | ".join(f"{1e3 * m[f'exported_{p}']:.3f}" for p in report["accuracy"] if p != "f32")
      lines.append(
        f"| {b['batch_size']} | {1e3 * m['exported']:.3f} | {1e3 * m['training_jit']:.3f} | "
        f"{b['exported_over_training_jit']:.3f} | {opbyop_ratio} | {1e3 * m['exported_donated']:.3f} | {memory} | "
        f"{b['streams']['gain']:.2f}x | {others} |"
      )
    autotune = d["autotune"]
    lines += ["", f"Autotune levels: {autotune.get('levels') or autotune.get('reason')}", ""]
  lines += ["## Recommendation", ""]
  for r in report["recommendation"]:
    lines.append(
      f"- batch {r['batch_size']}: **{r['device']}, {r['precision']}** ({r['examples_per_second']:,.0f} examples/s); "
      f"based on the {r['based_on']}"
    )
  return "\n".join(lines) + "\n"
