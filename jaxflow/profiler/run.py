r"""`jaxflow profile`: the config's model measured on every device JAX sees; writes report.json/md, plots.

  jaxflow profile --config=configs/digits_cnn.py --workdir=runs/prof
  jaxflow profile --config=configs/digits_cnn.py --batch-sizes=1,32,256,1024 --precisions=f32,bf16,int8 \
    --trace --workdir=runs/prof2

Order: flags and config checked (a bad value is a one-line ConfigError, nothing written) -> weights
(trained into WORKDIR/train, or `config.init_from`) -> per device (the first of each backend: cpu,
then gpu / tpu when present): peaks, precision variants and their accuracy on the evaluation split,
int8 calibration choices, inference per batch size (unfused / jit / AOT), training, multi-stream,
autotune -> optional trace -> WORKDIR/report.json, report.md, plots/*.png.
"""

from __future__ import annotations

import datetime
import os
import platform
import time

import jax
import ml_collections

from jaxflow.config import ConfigError, config_hash, to_dict
from jaxflow.precision import quantize
from jaxflow.precision import variants as precision
from jaxflow.profiler import (
  inference,
  multistream,
  peaks,
  report,
  timing,
  train_speed,
  workload,
)
from jaxflow.profiler import trace as trace_lib
from jaxflow.run import compile_cache
from jaxflow.run import environment as run_environment
from jaxflow.run.assemble import problem_of
from jaxflow.training.state import num_params
from jaxflow.workdir import acquire_lock, write_config

SCHEMA, SCHEMA_VERSION = "jaxflow.profile", 1
BACKENDS = ("cpu", "gpu", "tpu")
PACKAGES = ("jax", "jaxlib", "flax", "optax", "numpy", "ml_dtypes", "jax-cuda12-plugin", "jax-cuda12-pjrt", "libtpu")
CALIBRATIONS = (("tensor", "max"), ("tensor", "percentile"), ("channel", "max"), ("channel", "percentile"))


def parse_batch_sizes(text: str) -> list[int]:
  """`--batch-sizes` as sorted distinct positive integers; anything else is a one-line ConfigError."""
  parts = [p.strip() for p in str(text).split(",") if p.strip()]
  bad = next((p for p in parts if not p.isdigit() or int(p) < 1), None)
  if not parts or bad is not None:
    raise ConfigError(
      f"--batch-sizes={text!r}: {'no batch size given' if not parts else f'{bad!r} is not a positive integer'}; "
      "allowed: positive integers, comma-separated, e.g. 1,32,256"
    )
  return sorted({int(p) for p in parts})


def profiled_devices(backends=BACKENDS) -> list:
  """The first device of every backend JAX sees (cpu always; gpu / tpu when present), of `backends`."""
  found = []
  for backend in backends:
    try:
      devices = jax.devices(backend)
    except RuntimeError:
      continue
    if devices:
      found.append(devices[0])
  return found


def device_name(device) -> str:
  """How the report names a device: "platform:id kind"."""
  return f"{device.platform}:{device.id} {device.device_kind}"


def _cpu_caches() -> dict:
  """{'L1d': '32K', 'L2': '1024K', 'L3': '32768K'} of CPU 0, from sysfs (empty where unavailable)."""
  caches = {}
  base = "/sys/devices/system/cpu/cpu0/cache"
  try:
    for index in sorted(os.listdir(base)):
      if not index.startswith("index"):
        continue

      def read(name, i=index):
        return open(os.path.join(base, i, name)).read().strip()

      kind = read("type")
      if kind != "Instruction":
        caches[f"L{read('level')}" + ("d" if kind == "Data" else "")] = read("size")
  except OSError:
    pass
  return caches


def environment() -> dict:
  """The software and machine the profile ran on: versions, CPU and caches, XLA/JAX settings, backends."""
  versions = {
    name: v for name, v in run_environment.package_versions(PACKAGES).items() if v is not None
  }  # only what is installed
  return {
    "versions": versions,
    "platform": platform.platform(),
    "cpu": run_environment.cpu_model(),
    "cpu_count": os.cpu_count(),
    "cpu_caches": _cpu_caches(),
    "xla_flags": os.environ.get("XLA_FLAGS", ""),
    "jax_platforms": os.environ.get("JAX_PLATFORMS", ""),
    "jax_default_matmul_precision": str(jax.config.jax_default_matmul_precision),
    "jax_enable_x64": bool(jax.config.jax_enable_x64),
    "backends": {
      d.platform: {
        "platform_version": getattr(d.client, "platform_version", None),
        "count": len(jax.devices(d.platform)),
      }
      for d in profiled_devices()
    },
  }


def _log(quiet: bool):
  """A progress printer stamped with seconds since now (silent when `quiet`)."""
  start = time.perf_counter()
  return (
    (lambda msg: None)
    if quiet
    else (lambda msg: print(f"[profile {time.perf_counter() - start:6.1f}s] {msg}", flush=True))
  )


def _accuracy(variants, work, device, problem) -> dict:
  """Each variant's test metric on the evaluation split, and its change against f32's."""
  results, reference = {}, None
  for variant in variants:
    result, outputs = precision.evaluate(variant, work.eval_set, problem, device, reference=reference)
    if variant.name == "f32":
      reference = outputs
    results[variant.name] = result | {"notes": list(variant.notes)}
  base = results["f32"]["value"]
  for result in results.values():
    result["change_vs_f32"] = result["value"] - base
  return results


def _calibration_study(work, calibration, device, problem, reference_value: float) -> list[dict]:
  """Test metric of int8 under each activation-calibration choice (timing does not depend on it:
  the same program with different constants)."""
  rows = []
  forward = quantize.make_forward(work.model)
  for granularity, method in CALIBRATIONS:
    weights = quantize.quantize(work.params, calibration, method=method, granularity=granularity)
    v = precision.Variant("int8", forward, weights)
    result, _ = precision.evaluate(v, work.eval_set, problem, device)
    rows.append(
      {
        "granularity": granularity,
        "method": method,
        "value": result["value"],
        "change_vs_f32": result["value"] - reference_value,
      }
    )
  return rows


def profile_device(
  device, work, problem, config, *, batch_sizes, precisions, protocol, device_peaks, log
) -> tuple[dict, list, object]:
  """One device's entry of the report; also its usable variants and training step (for the trace)."""
  load_start = run_environment.load_average()
  entry: dict = {
    "name": device_name(device),
    "platform": device.platform,
    "device_kind": device.device_kind,
    "id": device.id,
    "platform_version": getattr(device.client, "platform_version", None),
    "peaks": device_peaks,
    "notes": [],
  }
  variants, calibration = precision.build_variants(
    work.model, work.params, precisions, calibration_inputs=work.calibration
  )
  sample = work.batches(batch_sizes[0], 1)[0]
  variants = [inference.usable_variant(v, device, sample) for v in variants]
  log(f"{entry['name']}: accuracy of {', '.join(v.name for v in variants)}")
  entry["precision"] = _accuracy(variants, work, device, problem)
  if calibration is not None:
    entry["calibration"] = {
      "layers": quantize.describe(calibration),
      "choices": _calibration_study(work, calibration, device, problem, entry["precision"]["f32"]["value"]),
      "timed": "tensor, max",
      "percentile": quantize.PERCENTILE,
    }
  sizes = [work.fixed_batch] if work.fixed_batch else batch_sizes
  entry["inference"] = inference.profile_inference(variants, work, device, sizes, protocol, device_peaks, log=log)
  log(f"{entry['name']}: training")
  same_device = device == jax.devices()[0]  # the training run's programs were compiled for the default device
  entry["training"], train_step = train_speed.profile_training(
    config, problem, device, protocol, compiled=work.compiled if same_device else None
  )
  f32 = variants[0]
  log(f"{entry['name']}: multi-stream")
  entry["multistream"] = [
    multistream.profile_multistream(f32, work, device, b, protocol) for b in sorted({sizes[0], sizes[-1]})
  ]
  entry["autotune"] = multistream.profile_autotune(f32, work, device, sizes[-1], protocol)
  stats = device.memory_stats()
  entry["memory_stats"] = {k: int(v) for k, v in stats.items() if isinstance(v, (int, float))} if stats else None
  # No device note when memory_stats is missing: "Not applicable here" says it (one note, once).
  entry["load_average"] = {"start": load_start, "end": run_environment.load_average()}
  return entry, variants, train_step


def _not_applicable(work, devices: list[dict]) -> list[str]:
  """What this profile could not measure here, and why (report.md's "Not applicable here")."""
  notes = []
  if work.fixed_batch:
    notes.append(
      f"batch sizes: {work.config.data.name} is one fixed {work.batch_unit}; it was profiled at that one batch"
    )
  for d in devices:
    if not d["autotune"].get("applicable", True):
      notes.append(f"{d['name']}: kernel auto-tuning: {d['autotune']['reason']}")
    if d["training"].get("device_resident", {}).get("applicable") is False:
      notes.append(
        f"{d['name']}: training input share on device-resident data: {d['training']['device_resident']['reason']}"
      )
    if d.get("memory_stats") is None:
      notes.append(
        f"{d['name']}: peak device memory: device.memory_stats() is not reported by the {d['platform']} backend "
        "(memory_analysis gives each program's planned bytes: the cost and memory table)"
      )
  if not any(d["platform"] in ("gpu", "tpu") for d in devices):
    notes.append(
      "gpu / tpu: none visible to JAX here; "
      "run the same command on such a machine and `jaxflow profile compare` the two reports"
    )
  return notes


def run_profile(
  config: ml_collections.ConfigDict,
  workdir: str,
  *,
  batch_sizes: str = "1,32,256",
  precisions: str = "f32,bf16",
  trace: bool = False,
  quiet: bool = False,
  protocol: timing.Protocol | None = None,
  device_peaks: dict | None = None,
  quick_peaks: bool = False,
  backends: tuple[str, ...] = BACKENDS,
  plots: bool = True,
) -> dict:
  """Profiles `config`'s model into `workdir`; returns the report (also in report.json).

  `protocol`: the timing protocol (default `timing.Protocol()`). `device_peaks`: {device name: peaks}
  measured earlier (the suite measures once for all its configs); missing devices are measured.
  `quick_peaks`: small peak sizes (tests). `backends`: which of cpu / gpu / tpu to profile (those present).
  `plots=False`: no plots/*.png (a caller that reads only report.json, like experiments/hardware's workers, saves
  the few CPU-seconds of drawing them).
  """
  sizes, names = parse_batch_sizes(batch_sizes), precision.parse_precisions(precisions)
  problem = problem_of(config)  # one-line ConfigError before anything is written
  compile_cache.enable(config.get("compilation_cache"))
  devices = _visible_devices(backends)
  protocol = protocol or timing.Protocol()
  log = _log(quiet)
  wall = time.perf_counter()
  load_start = run_environment.load_average()
  with acquire_lock(workdir, command="jaxflow profile"):
    os.makedirs(workdir, exist_ok=True)
    write_config(workdir, config)
    work = _load_work(config, problem, workdir, log)
    device_entries, traced = [], None
    for device in devices:
      known = _peaks_of(device, device_peaks, quick_peaks, log)
      entry, variants, train_step = profile_device(
        device,
        work,
        problem,
        config,
        batch_sizes=sizes,
        precisions=names,
        protocol=protocol,
        device_peaks=known,
        log=log,
      )
      device_entries.append(entry)
      if trace and traced is None:
        traced = _trace(workdir, variants, work, device, sizes, train_step, log)
    result = {
      "schema": SCHEMA,
      "schema_version": SCHEMA_VERSION,
      "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      "workdir": workdir,
      "config_hash": config_hash(config),
      "config": to_dict(config),
      "model": _model_entry(config, work, problem),
      "problem": _problem_entry(config, work, problem),
      "weights": work.weights,
      "request": {"batch_sizes": sizes, "precisions": names, "trace": trace},
      "protocol": protocol.to_dict(),
      "environment": environment()
      | {"load_average_start": load_start, "load_average_end": run_environment.load_average()},
      "devices": device_entries,
      "not_applicable": _not_applicable(work, device_entries),
      "trace": traced,
      "seconds": time.perf_counter() - wall,
    }
    report.write(result, workdir, draw=plots)
    log(f"wrote {os.path.join(workdir, 'report.md')}")
    return result


def _load_work(config, problem, workdir: str, log) -> workload.Workload:
  """The model, its weights (trained into WORKDIR/train or from `config.init_from`) and its data."""
  log(
    "weights: "
    + (f"from {config.init_from}" if config.init_from else f"training into {os.path.join(workdir, 'train')}")
  )
  return workload.load_workload(config, problem, workdir, quiet=True)


def _visible_devices(backends: tuple[str, ...]) -> list:
  """The devices to profile; none of `backends` visible is a ConfigError naming what JAX sees."""
  devices = profiled_devices(backends)
  if not devices:
    raise ConfigError(
      f"no device of backends {', '.join(backends)} is visible to JAX; "
      f"it sees: {', '.join(sorted({d.platform for d in jax.devices()}))}"
    )
  return devices


def _peaks_of(device, device_peaks: dict | None, quick: bool, log) -> dict:
  """The device's peaks: as given (measured earlier for it), else measured now."""
  name = device_name(device)
  known = (device_peaks or {}).get(name)
  if known is None:
    log(f"{name}: measuring peak matmul FLOP/s and copy bandwidth")
    known = peaks.measure_peaks(device, quick=quick)
  return known


def _model_entry(config, work, problem) -> dict:
  """The report's `model`: name, family, parameter count, output size."""
  return {
    "name": config.model.name,
    "family": work.family,
    "num_params": num_params(work.params),
    "output_dim": problem.output_dim,
  }


def _problem_entry(config, work, problem) -> dict:
  """The report's `problem`: the task, input shape, class count, split sizes, dataset, batch unit."""
  return {
    "kind": problem.kind,
    "input_shape": list(problem.input_shape),
    "num_classes": problem.num_classes,
    "train_size": problem.train_size,
    "eval_size": problem.eval_size,
    "dataset": config.data.name,
    "batch_unit": work.batch_unit,
  }


def _trace(workdir: str, variants, work, device, sizes, train_step, log) -> dict:
  """One profiled step of each variant (AOT forward at the largest batch size) and one training step
  (jaxflow's program) under jax.profiler."""
  log(f"tracing one step per precision at batch {sizes[-1]}")
  steps = []
  host = work.batches(sizes[-1], 1)[0]
  for variant in variants:
    weights, x = jax.device_put(variant.weights, device), jax.device_put(variant.prepare(host), device)
    compiled = jax.jit(variant.forward).lower(weights, x).compile()
    steps.append((f"inference {variant.name} batch {sizes[-1]}", lambda c=compiled, w=weights, x=x: c(w, x)))
  steps.append(("train step", train_step))
  return trace_lib.write_trace(os.path.join(workdir, "trace"), steps)
