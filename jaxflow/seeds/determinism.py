"""`jaxflow seeds --check-determinism`: what is and is not bitwise reproducible, checked, said plainly.

1. The same seed twice in this process (one program, one device): params_sha256 equal?
2. That run against the study's own run of the seed (trained in the study's mode: a vmapped program
   computes the same math with other rounding), and against the seed trained in a fresh process.
3. One device against N: the seed trained with `parallel.mode=sharded` on every device present, or,
   on a CPU-only machine with one device, in a subprocess with 2 forced CPU devices.
4. On a GPU, two runs without and two with `--xla_gpu_deterministic_ops=true` (XLA_FLAGS must be set
   before jax starts, so in subprocesses); elsewhere the report says it does not apply.

Where a pair is not bitwise equal, jaxflow.seeds.divergence_audit names the first checkpointed step and the
first layer at which the two runs part, and plots the per-layer difference over steps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import numpy as np

from jaxflow.run.train import train_and_evaluate
from jaxflow.seeds import divergence_audit
from jaxflow.seeds.sweeps import seed_config
from jaxflow.training import checkpoints
from jaxflow.workdir import write_config

FLAGS = {
  "XLA_FLAGS=--xla_gpu_deterministic_ops=true": "GPU: deterministic reductions and scatters (atomics off); slower. "
  "Without it, two identical GPU runs may differ in the last bits.",
  "XLA_FLAGS=--xla_gpu_autotune_level=0": "GPU: no autotuning; autotuning may pick another algorithm (other rounding) "
  "per run.",
  "jax_threefry_partitionable (jax.config, default True)": "random bits independent of sharding: a sharded run draws "
  "the single-device run's dropout masks.",
  "jax_default_prng_impl (jax.config)": "which PRNG (threefry, rbg, unsafe_rbg) turns keys into bits; rbg bits may "
  "differ across backends and shardings.",
  "parallel.mode / device count": "an all-reduce adds partial gradients in another order: equal to rounding, not "
  "bitwise.",
  "XLA_FLAGS=--xla_cpu_enable_fast_math": "CPU fast math (off by default) reassociates floating-point arithmetic.",
  "jax_enable_x64": "float64: a different computation altogether, not a more exact copy of the float32 one.",
}


def _params(workdir: str):
  return checkpoints.read_run_params(workdir)[0]


def _max_diff(a_dir: str, b_dir: str) -> float:
  a, b = _params(a_dir), _params(b_dir)
  return max(
    float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
  )


def _pair(what: str, a_sha: str, b_sha: str, a_dir: str, b_dir: str) -> dict:
  """One check; when not bitwise equal, where the two runs first part (divergence_audit), with its plot."""
  same = a_sha == b_sha
  diff = 0.0 if same else _max_diff(a_dir, b_dir)
  verdict = "bitwise equal" if same else f"NOT bitwise equal (max |param difference| {diff:.3g})"
  out = {"check": what, "bitwise_equal": same, "max_abs_diff": diff, "statement": f"{what}: {verdict}."}
  if not same:
    parted = divergence_audit.layer_differences(a_dir, b_dir)
    out["divergence"] = parted
    out["statement"] = f"{what}: {verdict}; {divergence_audit.describe(parted)}."
  return out


def _plot_divergences(checks: list[dict], workdir: str) -> None:
  """plots/determinism_<i>.png for every check that found runs parting; its path goes into the check."""
  for i, c in enumerate(checks):
    if c.get("divergence") and c["divergence"]["steps"]:
      rel = os.path.join("plots", f"determinism_{i}.png")
      divergence_audit.plot(c["divergence"], c["check"], os.path.join(workdir, rel))
      c["plot"] = rel  # report.md links it below the statement; the statement stays plain text


def _subprocess_train(config, workdir: str, *, xla_flags: str, timeout: float = 600) -> dict:
  """Trains `config` in a fresh process with XLA_FLAGS set before jax starts; returns its summary. The config
  travels as the workdir's own config.json (data, not pickle)."""
  write_config(workdir, config)
  code = (
    "import json, sys, jaxflow, jaxflow.workdir; config = jaxflow.workdir.read_config(sys.argv[1]); "
    "print(json.dumps(jaxflow.train(config, sys.argv[2], quiet=True)))"
  )
  env = {**os.environ, "XLA_FLAGS": (os.environ.get("XLA_FLAGS", "") + " " + xla_flags).strip()}
  done = subprocess.run(
    [sys.executable, "-c", code, workdir, workdir], capture_output=True, text=True, timeout=timeout, env=env
  )
  if done.returncode != 0:
    raise RuntimeError(
      "determinism check subprocess failed: "
      f"{done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}"
    )
  return json.loads(done.stdout.strip().splitlines()[-1])


def _process_check(seed0, base: str, first: tuple[dict, str]) -> dict:
  """Seed 0 in a fresh Python process (same XLA_FLAGS, same devices) against this process's run: what a
  rerun of the command tomorrow gets."""
  other = os.path.join(base, "process")
  try:
    summary = _subprocess_train(seed0, other, xla_flags="")
  except (RuntimeError, subprocess.TimeoutExpired) as e:
    return {"check": "two processes", "bitwise_equal": None, "statement": f"two processes: not compared ({e})."}
  return _pair("the same seed in another process", first[0]["params_sha256"], summary["params_sha256"], first[1], other)


def _devices_check(seed0, base: str, first: tuple[dict, str]) -> dict | None:
  """Seed 0 on every device present (sharded), or on 2 forced CPU devices in a subprocess, against `first`."""
  many = os.path.join(base, "devices")
  sharded = seed0.copy_and_resolve_references()
  sharded.parallel.mode = "sharded"
  n = len(jax.devices())
  try:
    if n > 1:
      if sharded.train.batch_size % n:
        raise RuntimeError(f"batch {sharded.train.batch_size} does not divide by {n} devices")
      summary = train_and_evaluate(sharded, many, quiet=True)
      label = f"1 device against {n} devices (sharded)"
    elif jax.default_backend() == "cpu":
      sharded.parallel.num_devices = 2
      summary = _subprocess_train(sharded, many, xla_flags="--xla_force_host_platform_device_count=2")
      label = "1 device against 2 forced CPU devices (sharded, in a subprocess)"
    else:
      summary = None
      label = None
    if summary is not None:
      return _pair(label, first[0]["params_sha256"], summary["params_sha256"], first[1], many)
  except (RuntimeError, subprocess.TimeoutExpired) as e:
    return {
      "check": "1 device against N",
      "bitwise_equal": None,
      "statement": f"1 device against N devices: not compared ({e}).",
    }
  return None


def check(config, sweep, workdir: str) -> dict:
  """The checks above on seed 0 of `sweep` (the first sweep of the study)."""
  base = os.path.join(workdir, "determinism")
  seed0 = seed_config(config, 0, sweep.vary)
  seed0.train.overwrite = True
  # A checkpoint at every epoch end, all kept: where two runs part is found between checkpoints (host-side
  # settings: the training math is the study's).
  seed0.checkpoint.every_epochs, seed0.checkpoint.keep = 1, seed0.train.epochs + 1
  checks = []
  runs = {}
  for name in ("first", "second"):
    runs[name] = (train_and_evaluate(seed0, os.path.join(base, name), quiet=True), os.path.join(base, name))
  checks.append(
    _pair(
      "the same seed trained twice in one process",
      runs["first"][0]["params_sha256"],
      runs["second"][0]["params_sha256"],
      runs["first"][1],
      runs["second"][1],
    )
  )
  study_summary = sweep.summaries[0]
  if study_summary.get("status") == "completed":
    checks.append(
      _pair(
        f"that run against the study's own seed 0 (trained in mode {sweep.mode!r})",
        runs["first"][0]["params_sha256"],
        study_summary["params_sha256"],
        runs["first"][1],
        sweep.workdirs[0],
      )
    )
  checks.append(_process_check(seed0, base, runs["first"]))
  devices = _devices_check(seed0, base, runs["first"])
  if devices is not None:
    checks.append(devices)
  if jax.default_backend() == "gpu":
    for flags, tag in (("", "default"), ("--xla_gpu_deterministic_ops=true", "deterministic_ops")):
      a = _subprocess_train(seed0, os.path.join(base, f"gpu_{tag}_a"), xla_flags=flags)
      b = _subprocess_train(seed0, os.path.join(base, f"gpu_{tag}_b"), xla_flags=flags)
      checks.append(
        _pair(
          f"two identical GPU runs, XLA_FLAGS={flags or '(none)'}",
          a["params_sha256"],
          b["params_sha256"],
          os.path.join(base, f"gpu_{tag}_a"),
          os.path.join(base, f"gpu_{tag}_b"),
        )
      )
  else:
    checks.append(
      {
        "check": "gpu deterministic ops",
        "bitwise_equal": None,
        "statement": f"--xla_gpu_deterministic_ops: does not apply on the {jax.default_backend()} backend (no GPU "
        "here); not measured.",
      }
    )
  _plot_divergences(checks, workdir)
  return {"checks": checks, "flags": FLAGS}
