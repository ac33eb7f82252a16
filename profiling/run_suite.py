"""The profiling suite: every model family's config profiled on the machine at hand, reports kept in git.

  JAXFLOW_DATA_DIR=/tmp/jf_data python profiling/run_suite.py                 # ~10-15 min on 2 CPU cores
  python profiling/run_suite.py --configs=digits_mlp --quick                  # a smoke run (seconds of timing)
  python profiling/run_suite.py --backends=gpu                                # on a GPU machine: the GPU only

Profiles configs/digits_mlp.py (mlp), digits_cnn.py (cnn), digits_rnn.py (rnn), graph_cycles_gcn.py and
karate_gcn.py (gnn) with `jaxflow profile` (batch sizes 1, 32, 256, 1024; f32, bf16, int8) on every
backend JAX sees, measuring each device's peaks once for all configs. The weights are trained in a
scratch folder (`--scratch`, default runs/profiling/); what is kept is each report: report.json,
report.md and plots/ in profiling/<machine>/<config>/, where <machine> is `gpu` when a GPU was
profiled (its report also holds the host CPU, unless --backends=gpu), `tpu` likewise, else `cpu`.
No trace is kept (pass --trace to write one into the scratch folder). profiling/suite_<machine>.json
records what was measured, where, and what was skipped; the table between the suite markers in
profiling/README.md is rewritten from all the reports present.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import sys
import time

# The checkout's jaxflow, also when it is not installed (python puts profiling/, not the checkout, on sys.path).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax

import jaxflow
from jaxflow.profiler import peaks, run, timing
from jaxflow.workdir import write_json, write_text

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.join(ROOT, "profiling")
CONFIGS = ("digits_mlp", "digits_cnn", "digits_rnn", "graph_cycles_gcn", "karate_gcn")
BEGIN, END = "<!-- suite:begin -->", "<!-- suite:end -->"


def machine_kind(devices) -> str:
  platforms = {d.platform for d in devices}
  return "gpu" if "gpu" in platforms else "tpu" if "tpu" in platforms else "cpu"


def profile_all(args) -> dict:
  backends = tuple(args.backends.split(","))
  devices = run.profiled_devices(backends)
  kind = machine_kind(devices)
  protocol = timing.QUICK if args.quick else timing.Protocol()
  print(f"suite: {', '.join(run.device_name(d) for d in devices)} -> profiling/{kind}/", flush=True)
  device_peaks = {}
  for d in devices:
    start = time.perf_counter()
    device_peaks[run.device_name(d)] = peaks.measure_peaks(d, quick=args.quick)
    print(f"suite: peaks of {run.device_name(d)} measured in {time.perf_counter() - start:.1f} s", flush=True)
  record = {
    "machine": kind,
    "devices": [run.device_name(d) for d in devices],
    "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "environment": run.environment(),
    "protocol": protocol.to_dict(),
    "batch_sizes": args.batch_sizes,
    "precisions": args.precisions,
    "runs": [],
  }
  if kind == "cpu":
    record["skipped"] = [
      "profiling/gpu/: no GPU visible to JAX on this machine; run this script on a GPU machine to fill it"
    ]
  for name in args.configs.split(","):
    start = time.perf_counter()
    config = jaxflow.load_config(os.path.join(ROOT, "configs", f"{name}.py"))
    scratch = os.path.join(args.scratch, kind, name)
    report = run.run_profile(
      config,
      scratch,
      batch_sizes=args.batch_sizes,
      precisions=args.precisions,
      trace=args.trace,
      quiet=args.quiet,
      protocol=protocol,
      device_peaks=device_peaks,
      quick_peaks=args.quick,
      backends=backends,
    )
    kept = os.path.join(HERE, kind, name)
    if os.path.isdir(kept):
      shutil.rmtree(kept)
    os.makedirs(kept)
    for item in ("report.json", "report.md", "plots"):
      source = os.path.join(scratch, item)
      (shutil.copytree if os.path.isdir(source) else shutil.copy2)(source, os.path.join(kept, item))
    seconds = time.perf_counter() - start
    record["runs"].append(
      {
        "config": f"configs/{name}.py",
        "report": os.path.relpath(kept, HERE),
        "seconds": seconds,
        "devices": [d["name"] for d in report["devices"]],
      }
    )
    print(f"suite: {name} done in {seconds:.0f} s -> {os.path.relpath(kept, ROOT)}", flush=True)
  path = os.path.join(HERE, f"suite_{kind}.json")
  if os.path.isfile(path):  # a partial rerun keeps the other configs' entries
    with open(path) as f:
      previous = json.load(f)
    mine = {r["config"] for r in record["runs"]}
    record["runs"] = [r for r in previous.get("runs", []) if r["config"] not in mine] + record["runs"]
  write_json(path, record, indent=1)
  return record


def _ms(seconds) -> str:
  return "n/a" if seconds is None else f"{seconds * 1e3:.3g}"


def summary_rows(report: dict, kind: str, name: str) -> list[list]:
  rows = []
  for d in report["devices"]:
    f32 = sorted((r for r in d["inference"] if r["precision"] == "f32"), key=lambda r: r["batch_size"])
    small, large = f32[0], f32[-1]
    at_large = {r["precision"]: r for r in d["inference"] if r["batch_size"] == large["batch_size"]}

    def speed(p):
      r = at_large.get(p)
      return f"{large['timings']['aot']['median_s'] / r['timings']['aot']['median_s']:.2f}x" if r else "-"

    def acc(p):
      a = d["precision"].get(p)
      return f"{a['change_vs_f32'] * 100:+.1f}" if a and a["metric"] == "accuracy" else "-"

    kernel = large["fusion_speedup"].get("nofusion_over_aot")
    t = d["training"]
    ms = d["multistream"][0]
    rows.append(
      [
        kind,
        name,
        d["name"],
        f"{report['model']['num_params']:,}",
        f"{_ms(small['timings']['aot']['median_s'])} / {_ms(large['timings']['aot']['median_s'])} "
        f"(b={small['batch_size']} / {large['batch_size']})",
        f"{large['throughput_per_s']['aot']:.3g}",
        f"{small['fusion_speedup']['unfused_over_aot']:.0f}x / {large['fusion_speedup']['unfused_over_aot']:.1f}x",
        f"{kernel:.2f}x" if kernel else "n/a",
        f"{large['compile']['compile_s']:.2f}",
        f"{large['roofline']['efficiency']:.2f} ({large['roofline']['limited_by']})"
        if large["roofline"]["efficiency"] is not None
        else "n/a",
        f"{speed('bf16')} ({acc('bf16')})",
        f"{speed('int8')} ({acc('int8')})",
        f"{_ms(t['step']['median_s'])} ({t['step']['examples_per_s']:.0f}/s)",
        f"{t['host_fed']['input_share_serial'] * 100:.0f}%",
        f"{ms['async_dispatch']['gain']:.2f}x",
      ]
    )
  return rows


HEADERS = [
  "machine",
  "config",
  "device",
  "params",
  "f32 AOT latency ms",
  "f32 ex/s (largest batch)",
  "jit speedup vs op by op (smallest / largest batch)",
  "fusion-pass speedup, no fusion / AOT (largest)",
  "compile s (largest)",
  "roofline efficiency (largest)",
  "bf16 speed vs f32 (acc. pt)",
  "int8 speed vs f32 (acc. pt)",
  "train step ms (ex/s)",
  "host-fed input share",
  "async dispatch gain (smallest batch)",
]


def write_summary() -> str:
  """The table of every report under profiling/<machine>/<config>/, written between the README's markers."""
  rows = []
  for kind in ("cpu", "gpu", "tpu"):
    folder = os.path.join(HERE, kind)
    if not os.path.isdir(folder):
      continue
    for name in sorted(os.listdir(folder)):
      path = os.path.join(folder, name, "report.json")
      if os.path.isfile(path):
        with open(path) as f:
          rows += summary_rows(json.load(f), kind, name)
  lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)] + [
    "| " + " | ".join(str(c) for c in r) + " |" for r in rows
  ]
  table = "\n".join(lines)
  readme = os.path.join(HERE, "README.md")
  if os.path.isfile(readme):
    text = open(readme).read()
    if BEGIN in text and END in text:
      head, rest = text.split(BEGIN, 1)
      _, tail = rest.split(END, 1)
      write_text(readme, f"{head}{BEGIN}\n{table}\n{END}{tail}")
  return table


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--configs", default=",".join(CONFIGS))
  parser.add_argument("--batch-sizes", default="1,32,256,1024")
  parser.add_argument("--precisions", default="f32,bf16,int8")
  parser.add_argument("--backends", default="cpu,gpu,tpu", help="which backends to profile (those present)")
  parser.add_argument(
    "--scratch",
    default=os.path.join(ROOT, "runs", "profiling"),
    help="where the weights are trained and the full workdirs live",
  )
  parser.add_argument(
    "--trace", action="store_true", help="also write a trace per config (in the scratch workdir; not kept)"
  )
  parser.add_argument(
    "--quick", action="store_true", help="timing.QUICK and small peak sizes: a smoke run, not numbers to keep"
  )
  parser.add_argument("--quiet", action="store_true")
  parser.add_argument(
    "--summary-only", action="store_true", help="only rewrite the README table from the reports present"
  )
  args = parser.parse_args(argv)
  if not args.summary_only:
    record = profile_all(args)
    for line in record.get("skipped", []):
      print(f"suite: skipped {line}")
  print(write_summary())
  print(f"suite: devices seen by jax: {', '.join(str(d) for d in jax.devices())}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
