"""One XLA:CPU thread setting, as a long-lived process: reads profile requests (JSON lines) on stdin, runs
`jaxflow.profile` on each and answers one `RESULT {...}` line on stdout.

Why a process per setting: XLA:CPU sizes its thread pools when the backend starts, from the CPUs the process
may run on and XLA_FLAGS, so a thread count is a property of a process, not of a call. Why long-lived: the
study interleaves the two settings round by round (a noisy neighbour on the shared machine then hits both
alike); one process per setting pays imports and compiles once instead of once per round.

  python experiments/hardware/worker.py --threads=1   # run.py starts it with XLA_FLAGS set (THREAD_FLAGS)

--threads=1 pins the process to one CPU (sched_setaffinity, before jax is imported: XLA's pools then hold
one worker) and run.py adds `--xla_cpu_multi_thread_eigen=false` (single-threaded Eigen matmuls and
convolutions); --threads=2 leaves both. The worker reports what it really got: the threads the process runs
and the CPU seconds it burnt per wall second during each profile (about 1 when only one core works).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
THREAD_FLAGS = {1: "--xla_cpu_multi_thread_eigen=false", 2: ""}


def pin(threads: int) -> list[int]:
  """Restricts this process to `threads` CPUs (the first ones it may use); returns the CPUs it keeps."""
  allowed = sorted(os.sched_getaffinity(0))
  keep = allowed[: max(1, threads)]
  os.sched_setaffinity(0, set(keep))
  return keep


def _timing(entry: dict | None) -> float | None:
  return None if not entry else entry.get("median_s")


def inference_rows(device: dict) -> list[dict]:
  """Per batch size (f32): fused (AOT), jit, op by op, one program with fusion off, eager; roofline place."""
  rows = []
  for row in device["inference"]:
    if row["precision"] != "f32":
      continue
    t, roof = row["timings"], row.get("roofline") or {}
    rows.append(
      {
        "batch": row["batch_size"],
        "fused_s": _timing(t.get("aot")),
        "jit_s": _timing(t.get("jit")),
        "opbyop_s": _timing(t.get("unfused")),
        "nofusion_s": _timing(t.get("nofusion")),
        "eager_s": _timing(t.get("eager")),
        "intensity": roof.get("intensity"),
        "achieved_flops": roof.get("achieved_flops_per_s"),
        "efficiency": roof.get("efficiency"),
        "bound": roof.get("bound"),
        "flops": (row.get("cost") or {}).get("flops"),
      }
    )
  return rows


def device_summary(device: dict) -> dict:
  """The numbers the study keeps from one device's entry of a profile report."""
  training, peaks = device["training"], device["peaks"]
  return {
    "name": device["name"],
    "platform": device["platform"],
    "accuracy": device["precision"]["f32"]["value"],
    "inference": inference_rows(device),
    "train": {
      "batch": training["batch_size"],
      "step_s": training["step"]["median_s"],
      "dispatch_k_step_s": (training.get("dispatch_k") or {}).get("per_step_s"),
      "k": (training.get("dispatch_k") or {}).get("k"),
    },
    "peak_flops": peaks["matmul"]["f32"]["flops_per_s"],
    "peak_bytes_per_s": peaks["copy"]["bytes_per_s"],
    "ridge": peaks["matmul"]["f32"]["flops_per_s"] / peaks["copy"]["bytes_per_s"],
  }


def thread_check(size: int = 512, calls: int = 30) -> dict:
  """A jitted f32 matmul called back to back: its GFLOP/s and the CPU seconds the process burnt per wall second
  (about 1 when one core works, up to 2 when XLA really runs it on two): the check that a setting took effect."""
  import jax
  import jax.numpy as jnp

  x = jnp.ones((size, size), jnp.float32)
  f = jax.jit(lambda a: a @ a)
  f(x).block_until_ready()
  cpu0, wall0 = time.process_time(), time.perf_counter()
  for _ in range(calls):
    f(x).block_until_ready()
  wall = time.perf_counter() - wall0
  return {"cpu_per_wall": (time.process_time() - cpu0) / wall, "gflops": 2 * size**3 * calls / wall / 1e9}


def profile_one(request: dict, known_peaks: dict) -> dict:
  """One `jaxflow.profile` of the request's config; its devices' summaries and what the process burnt."""
  import jaxflow
  from jaxflow.profiler.timing import Protocol  # the profile's protocol= takes only this class (a gap)

  config = jaxflow.load_config(os.path.join(ROOT, request["config"]), request["overrides"])
  cpu0, wall0 = time.process_time(), time.perf_counter()
  report = jaxflow.profile(
    config,
    request["workdir"],
    batch_sizes=request["batch_sizes"],
    precisions="f32",
    quiet=True,
    protocol=Protocol(**request["protocol"]),
    quick_peaks=True,
    device_peaks=known_peaks if request.get("reuse_peaks") else None,
    plots=False,  # the study reads report.json only; its own plots are drawn from the rounds
  )
  wall = time.perf_counter() - wall0
  for device in report["devices"]:
    known_peaks[device["name"]] = device["peaks"]
  return {
    "thread_check": thread_check() if request.get("thread_check", not request.get("reuse_peaks")) else None,
    "devices": [device_summary(d) for d in report["devices"]],
    "num_params": report["model"]["num_params"],
    "wall_s": wall,
    "cpu_per_wall": (time.process_time() - cpu0) / wall,
    "process_threads": len(os.listdir("/proc/self/task")),
  }


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--threads", type=int, choices=sorted(THREAD_FLAGS), required=True)
  args = parser.parse_args()
  cpus = pin(args.threads)
  sys.path.insert(0, ROOT)
  known_peaks: dict = {}
  for line in sys.stdin:
    if not line.strip():
      continue
    request = json.loads(line)
    result = profile_one(request, known_peaks) | {"cpus": cpus, "xla_flags": os.environ.get("XLA_FLAGS", "")}
    print("RESULT " + json.dumps(result), flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
