"""`train.deterministic=True`: what makes a run bitwise repeatable on this backend, set before it starts.

XLA reads XLA_FLAGS once, when the backend starts, so the flags are put in the environment before
anything touches a device; a backend already started (a library call after other JAX work) cannot take
them, and the summary says so instead of pretending. Recorded in summary.json's `determinism`.

- GPU: `--xla_gpu_deterministic_ops=true` (reductions and scatters without atomics: two identical runs agree
  bitwise; slower, by how much per model family: benchmarks/determinism.py where a GPU is present).
- CPU: nothing to set. XLA:CPU runs the same program on the same device count bitwise alike every time
  (tests/seeds/test_seeds.py trains a seed twice and compares params_sha256); what changes bits on a CPU is a
  different program (vmap against sequential, another steps_per_dispatch), the device count or parallel mode
  (the all-reduce's order), or `--xla_cpu_enable_fast_math`, none of which a flag can pin.
"""

from __future__ import annotations

import os
from importlib import metadata

from jax._src import xla_bridge  # backends_are_initialized: no public spelling in jax 0.10

GPU_FLAGS = ("--xla_gpu_deterministic_ops=true",)
CPU_NOTE = (
  "XLA:CPU: the same program on the same device count is bitwise repeatable without any flag; vmap against "
  "sequential, the device count or parallel mode, and --xla_cpu_enable_fast_math still change the bits"
)


# jax's GPU backends come as plugins; without one the backend is a CPU (or TPU), and setting a GPU flag would only
# change the persistent compilation cache's key (it hashes XLA_FLAGS): every program compiled again for nothing.
GPU_PLUGINS = ("jax-cuda12-plugin", "jax-cuda13-plugin", "jax-rocm60-plugin", "jax-rocm7-plugin")


def _gpu_possible() -> bool:
  if os.environ.get("JAX_PLATFORMS", "").strip().lower() in ("cpu", "tpu"):
    return False
  for name in GPU_PLUGINS:
    try:
      metadata.version(name)
      return True
    except metadata.PackageNotFoundError:
      continue
  return False


def apply(config) -> dict:
  """Sets the flags when `config.train.deterministic` asks and the backend has not started; what was done."""
  if not config.train.get("deterministic", False):
    return {"requested": False}
  if not _gpu_possible():
    return {"requested": True, "flags": [], "set": True, "note": "no GPU backend installed: nothing to set"}
  present = os.environ.get("XLA_FLAGS", "").split()
  missing = [f for f in GPU_FLAGS if f not in present]
  if xla_bridge.backends_are_initialized():
    return {
      "requested": True,
      "flags": list(GPU_FLAGS),
      "set": not missing,
      "note": "the JAX backend had started before this run: XLA_FLAGS cannot change now"
      + (f"; set XLA_FLAGS='{' '.join(missing)}' before starting Python" if missing else "; they were already set"),
    }
  if missing:
    os.environ["XLA_FLAGS"] = " ".join([*present, *missing])
  return {"requested": True, "flags": list(GPU_FLAGS), "set": True, "note": "set before the backend started"}


def record(applied: dict, platform: str) -> dict:
  """The summary's entry once the backend is known: on CPU, why nothing needed changing."""
  if applied.get("requested") and platform == "cpu":
    return {**applied, "platform": "cpu", "note": CPU_NOTE}
  return {**applied, "platform": platform}
