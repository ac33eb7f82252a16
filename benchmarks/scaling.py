"""Data-parallel scaling of `jaxflow.train`: examples/s on 1, 2, 4 and 8 devices, sharded vs pmap.

  JAXFLOW_DATA_DIR=/tmp/jf_data python benchmarks/scaling.py             # ~9 min at load average ~2.5 on 2 cores
  python benchmarks/scaling.py --in-flight-modes sharded pmap             # the recorded run: both modes' max_in_flight
  python benchmarks/scaling.py --repeats 3 --models cnn --no-in-flight    # CNN grid only
  python benchmarks/scaling.py --in-flight-only                           # only the max_in_flight comparison
  python benchmarks/scaling.py --render benchmarks/results/scaling.json   # the tables of a recorded run

The runtime is compile-bound: each of the 48 subprocesses (16 configurations x 3) spends 4-9 s compiling
(more under load), more than it trains; 20+ min at load average 7.

Prints Markdown tables and writes benchmarks/results/scaling.json (CPU) and, when jax sees GPUs,
profiling/gpu/scaling.json (real devices, no forcing).

What is measured. For the digits CNN (configs/digits_cnn.py: on CPU one train step per dispatch) and the
digits MLP (configs/digits_mlp.py: a whole epoch per dispatch, one `lax.scan`), one `jaxflow.train` run per
measurement, in a fresh temporary workdir and a fresh subprocess, with `parallel.mode` = `single` on 1
device and `sharded` / `pmap` on N = 2, 4, 8 (`parallel.num_devices=N`). The global batch is the config's
(or `--batch-size`), so each device gets batch / N rows. Everything else is the config as shipped
(dropout 0.1, cosine schedule, checkpoint at the end, histograms every 10 epochs).

- **ex/s**: the run summary's `examples_per_second` = steps x global batch / `train_seconds`, where
  `train_seconds` is the loop's per-epoch time (train steps, train-metric fetch, the epoch's evaluation)
  with compilation subtracted (so **ms/step** = batch / ex/s includes each epoch's share of evaluation).
  This is the steady-state figure; `--cnn-epochs`/`--mlp-epochs` make it dominate (epoch 1's
  first-call costs beyond compilation stay in).
- **compile s**: the summary's `compile_seconds` (AOT lower + compile of every program).
- **wall s**: the summary's `wall_seconds` (inside `jaxflow.train`: data, compile, training, checkpoints),
  and **process s**: the whole subprocess as the parent saw it (interpreter, imports, device setup too).

Forced devices. On CPU the N devices are `XLA_FLAGS=--xla_force_host_platform_device_count=N`, set in each
subprocess before jax is imported (the parent never imports jax on the CPU path). They are N logical
devices of one XLA:CPU client sharing the machine's cores and its thread pool, not N processors: with 2
cores, N > 2 cannot run faster, and every step adds a cross-device gradient all-reduce (an in-memory
rendezvous of N threads). See benchmarks/README.md for what the curve means.

max_in_flight. On 8 forced devices the CNN (one step per dispatch, so a long chain of collective
programs) also runs with `parallel.max_in_flight` = 1 (block after every step), 2 (the default) and 4,
in `sharded` mode (`--in-flight-modes sharded pmap` adds pmap). The max_in_flight=2 runs are the grid's
own 8-device CNN runs (the same configuration runs once, not twice). Unbounded chains deadlocked in
XLA:CPU collectives before the bound was added, so every subprocess runs under a timeout (`--timeout`)
and is killed with SIGKILL (its whole process group) when it runs past it: a hang is recorded as
`timeout`, a crash (e.g. XLA's "Termination timeout for all reduce" abort) as `failed` with its exit
status and the end of its stderr; neither stops the benchmark.

Code measured. By default the workers import `jaxflow/` and `configs/` from a snapshot of HEAD (`git
archive`, extracted to a temporary folder put first on their `sys.path`), so every run measures one
recorded commit even if the checkout changes meanwhile (several sessions commit to it); `--live` imports
the working tree instead and records `git` state per run, warning in the report when it changed.

Noise. The machine is shared: every configuration runs `--repeats` times, interleaved (all
configurations once, then again, in an order rotated and reversed each repetition), after one untimed
warm-up run (which also prepares the dataset); the table gives medians and min-max. `os.getloadavg()` is
recorded before and after every run.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from importlib import metadata

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # for benchmarks.common (a worker puts the code it measures ahead of it)

from benchmarks import common  # noqa: E402 (imports neither jax nor jaxflow)
from benchmarks.scaling_report import MODES, render, summarize  # noqa: E402

DEFAULT_OUT = os.path.join(ROOT, "benchmarks", "results", "scaling.json")
GPU_OUT = os.path.join(ROOT, "profiling", "gpu", "scaling.json")
CONFIGS = {"cnn": "configs/digits_cnn.py", "mlp": "configs/digits_mlp.py"}


# --------------------------------------------------------------------------------------------------
# Worker: one jaxflow.train run in this (sub)process; prints one JSON line.


def worker(spec: dict) -> dict:
  """Runs in a fresh subprocess. XLA_FLAGS (forced CPU devices) must be set before jax is imported."""
  if spec["platform"] == "cpu":
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={spec['devices']}"
    os.environ["JAX_PLATFORMS"] = "cpu"
  code_root = spec.get("code_root") or ROOT
  sys.path.insert(0, code_root)  # ahead of the editable install's finder: the snapshot's jaxflow and configs
  import jax
  from absl import logging as absl_logging

  import jaxflow

  if not os.path.abspath(jaxflow.__file__).startswith(os.path.abspath(code_root) + os.sep):
    raise RuntimeError(f"imported {jaxflow.__file__}, not the jaxflow under {code_root}")

  absl_logging.set_verbosity(absl_logging.ERROR)  # orbax's per-save warnings
  visible = jax.devices(spec["platform"]) if spec["platform"] != "cpu" else jax.devices()
  overrides = [
    f"train.epochs={spec['epochs']}",
    f"parallel.mode={spec['mode']}",
    f"parallel.num_devices={spec['devices']}",
    f"parallel.max_in_flight={spec['max_in_flight']}",
    *([f"train.batch_size={spec['batch_size']}"] if spec.get("batch_size") else []),
  ]
  config = jaxflow.load_config(os.path.join(code_root, spec["config"]), overrides)
  with tempfile.TemporaryDirectory(prefix="jaxflow_scaling_") as workdir:
    summary = jaxflow.train(config, workdir, quiet=True)
  return {
    "examples_per_second": summary["examples_per_second"],
    "compile_seconds": summary["compile_seconds"],
    "train_seconds": summary["train_seconds"],
    "wall_seconds": summary["wall_seconds"],
    "steps": summary["steps"],
    "steps_per_dispatch": summary["steps_per_dispatch"],
    "batch_size": config.train.batch_size,
    "final_test_accuracy": summary["final"]["eval"]["accuracy"],
    "summary_device": summary["device"],
    "visible_devices": len(visible),
    "device_kind": visible[0].device_kind,
    "jaxflow_file": jaxflow.__file__,
  }


# --------------------------------------------------------------------------------------------------
# Parent: subprocesses under a hard timeout


def run_subprocess(spec: dict, *, timeout: float) -> dict:
  """One measurement in a new process group; SIGKILL to the group past `timeout` (a deadlock must not hang us)."""
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)  # the worker sets its own
  cmd = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)]
  # Live mode: other sessions may commit to this checkout meanwhile, so record the code each run imported.
  code = git_state() if not spec.get("code_root") else {"snapshot_of": spec.get("code_commit")}
  load_before = os.getloadavg()
  start = time.perf_counter()
  proc = subprocess.Popen(
    cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
  )
  try:
    out, err = proc.communicate(timeout=timeout)
    status = "ok" if proc.returncode == 0 else "failed"
  except subprocess.TimeoutExpired:
    os.killpg(proc.pid, signal.SIGKILL)
    out, err = proc.communicate()
    status = "timeout"
  process_s = time.perf_counter() - start
  result = {
    "status": status,
    "returncode": proc.returncode,
    "process_seconds": process_s,
    "loadavg_before": list(load_before),
    "loadavg_after": list(os.getloadavg()),
    "git": code,
  }
  if status == "ok":
    try:
      result.update(json.loads(out.strip().splitlines()[-1]))
    except (ValueError, IndexError):
      result.update(status="failed", error="no JSON on the worker's last stdout line")
  if status != "ok":
    result["stderr_tail"] = err[-3000:]
    result["stdout_tail"] = out[-1000:]
  return result


def grid(models, device_counts, *, cnn_epochs, mlp_epochs, batch_size, platform_name) -> list[dict]:
  specs = []
  for model in models:
    epochs = cnn_epochs if model == "cnn" else mlp_epochs
    for n in device_counts:
      for mode in ("single",) if n == 1 else MODES:
        specs.append(
          {
            "model": model,
            "config": CONFIGS[model],
            "mode": mode,
            "devices": n,
            "max_in_flight": 2,
            "epochs": epochs,
            "batch_size": batch_size,
            "platform": platform_name,
          }
        )
  return specs


def in_flight_grid(limits, *, modes, devices, cnn_epochs, batch_size, platform_name) -> list[dict]:
  return [
    {
      "model": "cnn",
      "config": CONFIGS["cnn"],
      "mode": mode,
      "devices": devices,
      "max_in_flight": k,
      "epochs": cnn_epochs,
      "batch_size": batch_size,
      "platform": platform_name,
    }
    for mode in modes
    for k in limits
  ]


def key(spec: dict) -> str:
  return f"{spec['model']}/{spec['mode']}/{spec['devices']}/in_flight={spec['max_in_flight']}"


def measure(specs: list[dict], *, repeats: int, timeout: float, log) -> dict[str, dict]:
  """All specs once per repetition, the order rotated each time; returns {key: {spec, runs}}.
  A spec asked for twice (the 8-device CNN at the default max_in_flight=2 is in both tables) runs once."""
  out = {key(s): {"spec": s, "runs": []} for s in specs}
  specs = [out[k]["spec"] for k in out]
  total, done = repeats * len(specs), 0
  for rep in range(repeats):
    shift = (rep * max(1, len(specs) // repeats)) % len(specs) if specs else 0
    order = specs[shift:] + specs[:shift]
    if rep % 2:
      order = order[::-1]
    for spec in order:
      result = run_subprocess(spec, timeout=timeout)
      result["repetition"] = rep
      out[key(spec)]["runs"].append(result)
      done += 1
      if result["status"] == "ok":
        msg = (
          f"{result['examples_per_second']:9.0f} ex/s  compile {result['compile_seconds']:.2f} s  "
          f"wall {result['wall_seconds']:.2f} s  acc {result['final_test_accuracy']:.4f}"
        )
      else:
        msg = f"{result['status'].upper()} rc={result['returncode']} after {result['process_seconds']:.1f} s"
      log(f"[{done}/{total}] rep {rep + 1} {key(spec):45s} {msg}  load {result['loadavg_before'][0]:.2f}")
  return out


# --------------------------------------------------------------------------------------------------
# GPU detection (a subprocess: the parent keeps jax out of its own process)


def gpu_count() -> tuple[int, str]:
  code = (
    "import jax\ntry:\n  print(len(jax.devices('gpu')))\n"
    "except RuntimeError as e:\n  print(0); print(str(e).splitlines()[0])\n"
  )
  try:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
  except subprocess.TimeoutExpired:
    return 0, "jax.devices('gpu') did not answer within 120 s"
  lines = proc.stdout.strip().splitlines()
  if proc.returncode != 0 or not lines:
    return 0, f"probe exited {proc.returncode}: {proc.stderr.strip()[-300:]}"
  return int(lines[0]), (lines[1] if len(lines) > 1 else "")


# versions(), git_state() and write_json() are this script's own, not jaxflow.run.environment's and
# jaxflow.workdir's (nor benchmarks.common's, which uses those): importing any jaxflow module runs
# jaxflow/__init__.py, which imports jax and the working tree's jaxflow, and this parent process must
# import neither (the workers measure a snapshot of jaxflow, and only they may initialize a backend).


def versions() -> dict:
  out = {"python": platform.python_version()}
  for name in ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint"):
    try:
      out[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
      out[name] = None
  return out


def git_state() -> dict | None:
  """HEAD and whether jaxflow/ or configs/ had uncommitted changes (the code measured is then not HEAD's)."""

  def git(*args):
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()

  try:
    return {
      "commit": git("rev-parse", "HEAD"),
      "jaxflow_dirty": bool(git("status", "--porcelain", "--", "jaxflow", "configs")),
    }
  except (OSError, subprocess.CalledProcessError):
    return None


def write_json(path: str, payload: dict) -> None:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(payload, f, indent=2)
  os.replace(tmp, path)


def snapshot(commit: str) -> str:
  """jaxflow/ and configs/ as committed at `commit`, extracted to a temporary folder the workers import
  from: the measured code stays one known commit even when the working tree changes during the run."""
  folder = tempfile.mkdtemp(prefix="jaxflow_scaling_src_")
  archive = subprocess.run(
    ["git", "archive", "--format=tar", commit, "jaxflow", "configs"], cwd=ROOT, capture_output=True, check=True
  ).stdout
  with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
    tar.extractall(folder, filter="data")
  return folder


def run_suite(args, *, platform_name: str, device_counts: list[int], log) -> tuple[str, dict]:
  specs = (
    []
    if args.in_flight_only
    else grid(
      args.models,
      device_counts,
      cnn_epochs=args.cnn_epochs,
      mlp_epochs=args.mlp_epochs,
      batch_size=args.batch_size,
      platform_name=platform_name,
    )
  )
  flight_devices = max(device_counts)
  if args.in_flight and "cnn" in args.models and flight_devices > 1:
    specs += in_flight_grid(
      args.in_flight,
      modes=args.in_flight_modes,
      devices=flight_devices,
      cnn_epochs=args.cnn_epochs,
      batch_size=args.batch_size,
      platform_name=platform_name,
    )
  for spec in specs:
    spec.update(code_root=args.code_root, code_commit=args.code_commit)
  # One untimed warm-up run: prepares the dataset in $JAXFLOW_DATA_DIR, fills the page cache.
  for model in sorted({s["model"] for s in specs})[:1]:
    warm = {
      "model": model,
      "config": CONFIGS[model],
      "mode": "single",
      "devices": 1,
      "max_in_flight": 2,
      "epochs": 1,
      "batch_size": args.batch_size,
      "platform": platform_name,
      "code_root": args.code_root,
      "code_commit": args.code_commit,
    }
    r = run_subprocess(warm, timeout=args.timeout)
    log(
      f"warm-up {model}: {r['status']} in {r['process_seconds']:.1f} s"
      + (f"\n{r.get('stderr_tail', '')}" if r["status"] != "ok" else "")
    )
  start = time.perf_counter()
  results = measure(specs, repeats=args.repeats, timeout=args.timeout, log=log)
  runtime = time.perf_counter() - start
  for entry in results.values():
    entry["summary"] = summarize(entry)
  code_states = sorted({json.dumps(r["git"], sort_keys=True) for e in results.values() for r in e["runs"]})
  report = render(results, args.models, flight_devices, args.in_flight, args.in_flight_modes)
  if len(code_states) > 1:
    report = (
      f"**Warning: the code changed during the measurement** ({len(code_states)} git states of jaxflow/ and configs/ "
      f"across the runs: {', '.join(code_states)}); each run's state is in the JSON.\n\n" + report
    )
  return report, {"results": results, "measure_seconds": runtime, "code_states": [json.loads(c) for c in code_states]}


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
    description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument("--worker", help=argparse.SUPPRESS)
  parser.add_argument("--models", nargs="+", default=["cnn", "mlp"], choices=sorted(CONFIGS))
  parser.add_argument("--devices", nargs="+", type=int, default=[1, 2, 4, 8], help="device counts (default 1 2 4 8)")
  parser.add_argument("--repeats", type=int, default=3, help="interleaved repetitions per configuration (default 3)")
  parser.add_argument(
    "--cnn-epochs", type=int, default=4, help="CNN epochs per run (default 4; 22 steps each at batch 64)"
  )
  parser.add_argument(
    "--mlp-epochs",
    type=int,
    default=30,
    help="MLP epochs per run (default 30, the config's; 11 steps each at batch 128)",
  )
  parser.add_argument(
    "--batch-size",
    type=int,
    default=None,
    help="global batch for both models (default: each config's, CNN 64, MLP 128)",
  )
  parser.add_argument(
    "--in-flight",
    nargs="*",
    type=int,
    default=[1, 2, 4],
    help="CNN max_in_flight values on the largest device count (default 1 2 4)",
  )
  parser.add_argument(
    "--in-flight-modes",
    nargs="+",
    default=["sharded"],
    choices=MODES,
    help="modes of the max_in_flight comparison "
    "(default sharded, what parallel.mode=auto picks; add pmap for both, ~1.5 min more)",
  )
  parser.add_argument(
    "--no-in-flight", dest="in_flight", action="store_const", const=[], help="skip the max_in_flight comparison"
  )
  parser.add_argument("--in-flight-only", action="store_true", help="only the max_in_flight comparison")
  parser.add_argument(
    "--timeout", type=float, default=120.0, help="seconds per subprocess before SIGKILL (default 120)"
  )
  parser.add_argument("--out", default=DEFAULT_OUT, help="CPU results JSON (default benchmarks/results/scaling.json)")
  parser.add_argument(
    "--gpu-out",
    default=GPU_OUT,
    help="GPU results JSON, written only when jax sees GPUs (default profiling/gpu/scaling.json)",
  )
  parser.add_argument("--render", metavar="JSON", help="print the tables of a results JSON this script wrote, and exit")
  parser.add_argument(
    "--live",
    action="store_true",
    help="import jaxflow from the working tree as it is at each run "
    "(default: a snapshot of HEAD's jaxflow/ and configs/)",
  )
  parser.add_argument("--skip-gpu", action="store_true", help="do not look for GPUs")
  return parser.parse_args(argv)


def main(argv=None) -> None:
  args = parse_args(argv)

  if args.worker:
    print(json.dumps(worker(json.loads(args.worker))), flush=True)
    return
  if args.render:
    with open(args.render) as f:
      saved = json.load(f)
    a = saved["args"]
    devices = [e["spec"]["devices"] for e in saved["results"].values()]
    print(render(saved["results"], a["models"], max(devices), a["in_flight"], a.get("in_flight_modes", MODES)))
    return

  log = common.log
  args.code_root = args.code_commit = None
  if not args.live:
    state = git_state()
    if state is None:
      raise SystemExit("not a git checkout: run with --live")
    args.code_commit = state["commit"]
    args.code_root = snapshot(args.code_commit)
    log(f"measuring jaxflow/ and configs/ of {args.code_commit[:12]} (snapshot in {args.code_root})")
  try:
    measure_all(args, log)
  finally:
    if args.code_root:
      shutil.rmtree(args.code_root, ignore_errors=True)


def measure_all(args, log) -> None:
  started = time.perf_counter()
  recorded = {
    "benchmark": "scaling",
    "timestamp": common.timestamp(),
    "host": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
    "versions": versions(),
    "git": git_state(),
    "args": {k: v for k, v in vars(args).items() if k not in ("worker", "code_root")},
    "measured_code": (
      {"source": "snapshot", "commit": args.code_commit}
      if args.code_commit
      else {"source": "working tree", "see": "each run's git field"}
    ),
  }

  # CPU: forced host devices.
  cpu_counts = sorted(set(args.devices))
  cpu_report, cpu_payload = run_suite(args, platform_name="cpu", device_counts=cpu_counts, log=log)
  runtime = time.perf_counter() - started
  header = (
    f"## jaxflow data-parallel scaling on forced CPU devices\n\n"
    f"{os.cpu_count()} CPU cores shared by all N forced devices (XLA_FLAGS=--xla_force_host_platform_device_count=N), "
    f"jax {recorded['versions']['jax']}; {datetime.datetime.now().isoformat(timespec='seconds')}; "
    f"{args.repeats} interleaved repetitions; "
    f"script runtime {runtime:.0f} s; jaxflow "
    + (f"as committed at {args.code_commit[:12]} (snapshot)" if args.code_commit else "from the working tree (--live)")
    + ".\n"
    "ex/s: the summary's examples_per_second (steady state, compile excluded); "
    "vs 1 device: ratio of medians to `single`."
  )
  report = header + "\n\n" + cpu_report
  print(report, flush=True)
  device = {"platform": "cpu", "forced_device_counts": cpu_counts}
  write_json(args.out, {**recorded, "device": device, "runtime_seconds": runtime, **cpu_payload, "markdown": report})
  log(f"wrote {args.out}")

  # GPU: real devices, if any.
  if args.skip_gpu:
    print("\nGPU: skipped (--skip-gpu).")
    return
  n_gpu, why = gpu_count()
  if n_gpu == 0:
    print(
      f"\nGPU: skipped, jax.devices('gpu') found no GPU ({why or 'none'}); "
      f"nothing written to {os.path.relpath(args.gpu_out, ROOT)}."
    )
    return
  gpu_counts = [n for n in cpu_counts if n <= n_gpu] or [1]
  gpu_started = time.perf_counter()
  gpu_report, gpu_payload = run_suite(args, platform_name="gpu", device_counts=gpu_counts, log=log)
  gpu_runtime = time.perf_counter() - gpu_started
  report = (
    f"## jaxflow data-parallel scaling on {n_gpu} GPU(s)\n\n"
    f"device counts {gpu_counts}; script runtime {gpu_runtime:.0f} s.\n\n" + gpu_report
  )
  print("\n" + report)
  device = {"platform": "gpu", "count": n_gpu, "device_counts": gpu_counts}
  write_json(
    args.gpu_out, {**recorded, "device": device, "runtime_seconds": gpu_runtime, **gpu_payload, "markdown": report}
  )
  log(f"wrote {args.gpu_out}")


if __name__ == "__main__":
  main()
