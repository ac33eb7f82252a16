"""The profile report: report.json (everything, versioned schema), report.md (tables), plots/*.png.

report.json's top level: `schema` ("jaxflow.profile") and `schema_version`, `created`, `config` and
`config_hash`, `model`, `problem`, `weights` (where the parameters came from), `request` (batch sizes,
precisions, trace), `protocol` (the timing protocol), `environment` (versions, CPU, XLA_FLAGS, load
averages), `devices` (one entry per profiled device: `name`, `peaks`, `precision`, `calibration`,
`inference` rows, `training`, `multistream`, `autotune`, `memory_stats`, `notes`), `not_applicable`,
`trace`. Times are seconds; report.md shows milliseconds.
"""

from __future__ import annotations

import json
import os

import numpy as np

from jaxflow.profiler import plots


def _default(value):
  if isinstance(value, np.ndarray):
    return value.tolist()
  if isinstance(value, np.generic):
    return value.item()
  return str(value)


def write(result: dict, workdir: str) -> dict:
  """Writes report.json, plots/*.png and report.md into `workdir`; returns their paths."""
  paths = {"json": os.path.join(workdir, "report.json"), "md": os.path.join(workdir, "report.md")}
  figures = plots.write_plots(result, os.path.join(workdir, "plots"))
  result["plots"] = {k: os.path.relpath(v, workdir) for k, v in figures.items()}
  with open(paths["json"], "w") as f:
    json.dump(result, f, indent=1, default=_default)
  with open(paths["md"], "w") as f:
    f.write(markdown(result))
  return paths | figures


def ms(seconds) -> str:
  if seconds is None:
    return "n/a"
  value = seconds * 1e3
  return f"{value:.3g}" if value >= 0.01 else f"{value:.2g}"


def _num(value, digits: int = 3) -> str:
  if value is None:
    return "n/a"
  if isinstance(value, float) and (abs(value) >= 1e5 or (0 < abs(value) < 1e-3)):
    return f"{value:.{digits - 1}e}"
  return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def _giga(value) -> str:
  return "n/a" if value is None else f"{value / 1e9:.3g}"


def table(headers: list[str], rows: list[list]) -> str:
  lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
  lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
  return "\n".join(lines) + "\n"


def _timing(t: dict) -> str:
  return f"{ms(t['median_s'])} [{ms(t['p10_s'])}, {ms(t['p90_s'])}]"


def findings(result: dict) -> list[str]:
  """Key figures in words, per device (also what `profiling/README.md` summarises)."""
  out = []
  for d in result["devices"]:
    rows = [r for r in d["inference"] if r["precision"] == "f32"]
    if rows:
      speedups = ", ".join(f"{r['fusion_speedup']['unfused_over_aot']:.1f}x at {r['batch_size']}" for r in rows)
      out.append(
        f"{d['name']}: f32 op by op / fused AOT program: {speedups} (what jit buys: per-op dispatch and fusion)."
      )
      eager = ", ".join(f"{r['fusion_speedup']['eager_over_aot']:.0f}x at {r['batch_size']}" for r in rows)
      out.append(f"{d['name']}: vs the model's own code run eagerly (no jit, framework Python included): {eager}.")
      if all(r["fusion_speedup"].get("nofusion_over_aot") for r in rows):
        kernel = ", ".join(f"{r['fusion_speedup']['nofusion_over_aot']:.2f}x at {r['batch_size']}" for r in rows)
        out.append(
          f"{d['name']}: one compiled program without / with XLA's fusion passes: {kernel} (fusion inside one dispatch)."
        )
      roof = ", ".join(
        f"{r['roofline']['efficiency']:.2f} at {r['batch_size']} ({r['roofline']['limited_by']})"
        for r in rows
        if r["roofline"]["efficiency"] is not None
      )
      if roof:
        out.append(f"{d['name']}: f32 AOT achieved FLOP/s as a share of its roofline's attainable: {roof}.")
      largest = max(r["batch_size"] for r in rows)
      at = {r["precision"]: r for r in d["inference"] if r["batch_size"] == largest}
      base = at["f32"]["timings"]["aot"]["median_s"]
      for name, r in at.items():
        if name == "f32":
          continue
        acc = d["precision"].get(name, {})
        change = acc.get("change_vs_f32")
        out.append(
          f"{d['name']}: {name} at batch {largest} runs {base / r['timings']['aot']['median_s']:.2f}x f32's speed"
          + (
            f", {acc.get('metric')} change {change * 100:+.1f} points"
            if change is not None and acc.get("metric") == "accuracy"
            else ""
          )
        )
    t = d.get("training", {})
    if "step" in t:
      share = t.get("host_fed", {}).get("input_share_serial")
      out.append(
        f"{d['name']}: training step {ms(t['step']['median_s'])} ms at batch {t['batch_size']} ({t['step']['examples_per_s']:.0f} examples/s)"
        + (f"; fed from the host, input takes {share * 100:.0f}% of a serial step" if share is not None else "")
      )
    for m in d.get("multistream", []):
      out.append(
        f"{d['name']}: async dispatch of {m['k']} batches of {m['batch_size']}: {m['async_dispatch']['gain']:.2f}x vs syncing each; "
        f"two models interleaved {m['two_models']['gain_interleaved']:.2f}x, two threads {m['two_models']['gain_threads']:.2f}x vs sequential"
      )
  return out


def _device_section(d: dict, result: dict) -> list[str]:
  parts = [f"## {d['name']}\n"]
  p = d["peaks"]
  peak_rows = [[name, _giga(v.get("flops_per_s")), v.get("n", v.get("error", ""))] for name, v in p["matmul"].items()]
  parts.append(
    "Measured peaks ("
    + ("quick sizes, " if p.get("quick") else "")
    + f"{p.get('seconds', 0):.1f} s, load {p.get('load_average')}): "
    f"copy bandwidth **{_giga(p['copy']['bytes_per_s'])} GB/s** (read + write of {p['copy']['array_bytes'] / 2**20:.0f} MiB).\n"
  )
  parts.append(table(["matmul dtype", "peak G(FL)OP/s", "n (square)"], peak_rows))
  acc = d["precision"]
  metric = next(iter(acc.values()))["metric"]
  rows = [
    [
      name,
      _num(r["value"], 4),
      f"{r['change_vs_f32'] * (100 if metric == 'accuracy' else 1):+.2f}" + (" pt" if metric == "accuracy" else ""),
      _num(r.get("max_abs_output_diff")),
      _num(r.get("same_prediction_share"), 4),
      "; ".join(r.get("notes", [])),
    ]
    for name, r in acc.items()
  ]
  parts.append(
    f"### Precision: test {metric} on the evaluation split ({next(iter(acc.values()))['examples']} examples)\n"
  )
  parts.append(
    table(["precision", metric, "change vs f32", "max abs output diff vs f32", "same prediction as f32", "notes"], rows)
  )
  if d.get("calibration"):
    c = d["calibration"]
    parts.append(
      f"int8 activation calibration on training data (per-channel weights always; percentile = {c['percentile']}th); timed: {c['timed']}\n"
    )
    parts.append(
      table(
        ["activations", "method", metric, "change vs f32"],
        [
          [r["granularity"], r["method"], _num(r["value"], 4), f"{r['change_vs_f32'] * 100:+.2f}"] for r in c["choices"]
        ],
      )
    )
  parts.append(f"### Inference latency, ms: median [p10, p90] ({result['problem']['batch_unit']} per batch)\n")
  rows = []
  for r in d["inference"]:
    t, h, nf = r["timings"], r["hlo"], r.get("nofusion", {})
    kernel_fusion = r["fusion_speedup"].get("nofusion_over_aot")
    rows.append(
      [
        r["precision"],
        r["batch_size"],
        _timing(t["eager"]),
        _timing(t["unfused"]),
        _timing(t["nofusion"]) if "nofusion" in t else "n/a",
        _timing(t["jit"]),
        _timing(t["aot"]),
        f"{r['throughput_per_s']['aot']:.4g}",
        f"{r['fusion_speedup']['unfused_over_aot']:.1f}x",
        f"{kernel_fusion:.2f}x" if kernel_fusion else "n/a",
        f"{r['fusion_speedup']['jit_over_aot']:.2f}",
        f"{r['compile']['lower_s']:.3f} + {r['compile']['compile_s']:.3f}",
        f"{h['multi_op_fusions']} / {h['ops']}"
        + (f" ({nf['hlo']['multi_op_fusions']} / {nf['hlo']['ops']})" if nf.get("hlo") else ""),
        r["jaxpr"]["dispatched_per_call"],
        f"{_num(r['fused_vs_unfused']['max_abs_diff'])} ({'within' if r['fused_vs_unfused']['within_tolerance'] else 'OVER'} {_num(r['fused_vs_unfused']['tolerance'])})",
      ]
    )
  parts.append(
    table(
      [
        "precision",
        "batch",
        "eager model code (no jit)",
        "unfused (op by op)",
        "compiled, no fusion",
        "jit",
        "AOT compiled",
        "AOT per s",
        "fusion speedup (op by op / AOT)",
        "fusion-pass speedup (no fusion / AOT)",
        "jit / AOT",
        "lower + compile s",
        "HLO multi-op fusions / kernels (no fusion)",
        "ops dispatched op by op",
        "max abs diff fused vs unfused (tolerance)",
      ],
      rows,
    )
  )
  parts.append(
    "Eager = the model's Python under jax.disable_jit() (framework overhead included); op by op = the program's jaxpr, one dispatch per "
    "primitive; no fusion = one compiled program with XLA's fusion passes off; jit / AOT = the fused program through jax.jit / the compiled "
    "executable.\n"
  )
  reasons = {r["nofusion"]["reason"] for r in d["inference"] if r.get("nofusion", {}).get("applicable") is False}
  parts += [f"Compiled without fusion: not measured ({reason}).\n" for reason in sorted(reasons)]
  parts.append("### Cost, roofline and memory (AOT program)\n")
  rows = []
  for r in d["inference"]:
    c, rf, m = r["cost"], r["roofline"], r["memory"]
    rows.append(
      [
        r["precision"],
        r["batch_size"],
        _num(c["flops"] / 1e6 if c["flops"] else None),
        _num(c["bytes_accessed"] / 1e6 if c["bytes_accessed"] else None),
        _num(c["arithmetic_intensity"]),
        _giga(rf["achieved_flops_per_s"]),
        _giga(rf["attainable_flops_per_s"]),
        _num(rf["efficiency"]),
        rf["limited_by"],
        _num(m.get("argument_bytes")),
        _num(m.get("output_bytes")),
        _num(m.get("temp_bytes")),
        ", ".join(f"{k}: {v}" for k, v in r["hlo"]["matmuls"].items()),
      ]
    )
  parts.append(
    table(
      [
        "precision",
        "batch",
        "MFLOP",
        "MB accessed",
        "FLOP/byte",
        "achieved GFLOP/s",
        "roof GFLOP/s",
        "efficiency",
        "limited by",
        "argument B",
        "output B",
        "temp B",
        "matmuls as XLA runs them",
      ],
      rows,
    )
  )
  parts.append(_training_section(d["training"]))
  ms_rows = [
    [
      m["batch_size"],
      m["k"],
      ms(m["async_dispatch"]["synced_per_batch_s"]),
      ms(m["async_dispatch"]["dispatched_per_batch_s"]),
      f"{m['async_dispatch']['gain']:.2f}x",
      ms(m["two_models"]["sequential_per_pair_s"]),
      ms(m["two_models"]["interleaved_per_pair_s"]),
      ms(m["two_models"]["threads_per_pair_s"]),
      f"{m['two_models']['gain_interleaved']:.2f}x / {m['two_models']['gain_threads']:.2f}x",
    ]
    for m in d["multistream"]
  ]
  parts.append("### Multi-stream (f32, AOT): ms per batch\n")
  parts.append(
    table(
      [
        "batch",
        "K",
        "sync each",
        "dispatch K then sync",
        "async gain",
        "2 models sequential (per pair)",
        "2 models interleaved",
        "2 models, 2 threads",
        "gain interleaved / threads",
      ],
      ms_rows,
    )
  )
  a = d["autotune"]
  parts.append("### Kernel auto-tuning\n")
  if not a.get("applicable", True):
    parts.append(f"Not applicable: {a['reason']}.\n")
  else:
    parts.append(
      table(
        ["--xla_gpu_autotune_level", "compile s", "run ms"],
        [
          [
            lvl,
            f"{v['compile_s']:.2f}" if "compile_s" in v else v.get("error"),
            _timing(v["timing"]) if "timing" in v else "",
          ]
          for lvl, v in a["levels"].items()
        ],
      )
    )
    parts.append(a.get("note", "") + "\n")
  if d.get("memory_stats"):
    keys = [k for k in ("peak_bytes_in_use", "bytes_in_use", "bytes_limit") if k in d["memory_stats"]]
    parts.append(
      "Device memory (process-wide, since start): "
      + ", ".join(f"{k} {d['memory_stats'][k] / 2**20:.1f} MiB" for k in keys)
      + "\n"
    )
  for note in d.get("notes", []):
    parts.append(f"- {note}\n")
  return parts


def _training_section(t: dict) -> str:
  lines = [
    f"### Training (jaxflow's programs, batch {t['batch_size']}, {t['steps_per_epoch']} steps per epoch)\n",
    f"Path: {t['path']}.\n",
  ]
  rows = [
    [
      "one step per dispatch, synced",
      ms(t["step"]["median_s"]),
      f"[{ms(t['step']['p10_s'])}, {ms(t['step']['p90_s'])}]",
      f"{t['step']['examples_per_s']:.0f}",
    ]
  ]
  for key, label in (
    ("async", "{k} one-step dispatches, then sync"),
    ("dispatch_k", "{k} steps in one program (jaxflow's plan)"),
  ):
    v = t.get(key, {})
    if "per_step_s" in v:
      rows.append(
        [
          label.format(k=v["k"]),
          ms(v["per_step_s"]),
          f"{v['gain_over_step']:.2f}x vs synced step",
          f"{v['examples_per_s']:.0f}",
        ]
      )
  h = t["host_fed"]
  rows.append(
    [
      "host-fed: input (assemble + transfer)",
      ms(h["input_s"]),
      f"{h['input_share_serial'] * 100:.0f}% of a serial step",
      "",
    ]
  )
  rows.append(
    ["host-fed: step on a ready batch", ms(h["step_s"]), f"{h['step_share_serial'] * 100:.0f}% of a serial step", ""]
  )
  rows.append(["host-fed: serial (input then step)", ms(h["serial_s"]), "", f"{h['examples_per_s_serial']:.0f}"])
  rows.append(
    [
      "host-fed: prefetched (next batch while the step runs)",
      ms(h["prefetched_s"]),
      f"device idle {h['device_idle_share_prefetched'] * 100:.0f}%",
      f"{h['examples_per_s_prefetched']:.0f}",
    ]
  )
  dr = t.get("device_resident", {})
  if dr.get("applicable"):
    rows.append(
      [
        "device-resident: the batch gather alone",
        ms(dr["gather_s"]),
        f"~{dr['input_share_estimate'] * 100:.0f}% of the step (estimate)",
        "",
      ]
    )
  lines.append(table(["what", "ms per step", "share / spread", "examples/s"], rows))
  return "\n".join(lines)


def markdown(result: dict) -> str:
  m = result["model"]
  devices = ", ".join(d["name"] for d in result["devices"])
  parts = [
    f"# Profile: {m['name']} ({m['family']}, {m['num_params']:,} parameters) on {devices}\n",
    f"Dataset `{result['problem']['dataset']}`, weights {result['weights']['source']} ({result['weights'].get('workdir')}). "
    f"jax {result['environment']['versions'].get('jax')}, jaxlib {result['environment']['versions'].get('jaxlib')}; "
    f"XLA_FLAGS={result['environment']['xla_flags'] or '(none)'}; CPU {result['environment']['cpu']} x{result['environment']['cpu_count']}; "
    f"load average {result['environment']['load_average_start']} -> {result['environment']['load_average_end']}. Created {result['created']}, "
    f"{result['seconds']:.0f} s.\n",
    "## Findings\n",
  ]
  parts += [f"- {line}\n" for line in findings(result)]
  parts.append("\nPlots: " + ", ".join(f"[{k}]({v})" for k, v in result.get("plots", {}).items()) + "\n")
  for d in result["devices"]:
    parts += _device_section(d, result)
  parts.append("## Not applicable here\n")
  parts += [f"- {note}\n" for note in result["not_applicable"]] or ["- (nothing)\n"]
  if result.get("trace"):
    tr = result["trace"]
    parts.append(
      f"\n## Trace\n\n{len(tr['files'])} files in `{tr['logdir']}` ({tr['events']} events in the JSON trace); steps: {', '.join(tr['steps'])}.\nOpen: {tr['open']}\n"
    )
  p = result["protocol"]
  parts.append(
    f"\n## Protocol\n\nWarm-up {p['warmup']} calls, then up to {p['repeats']} timed calls (at least {p['min_repeats']}, stopping after {p['max_seconds']} s of timed work), "
    f"variants interleaved in {p['rounds']} rounds; each call synchronized with block_until_ready on its outputs inside the timed interval; "
    f"input batches rotated (up to {p['max_rotations']} distinct, {p['rotate_bytes'] / 2**20:.0f} MiB); median with p10/p90 (ms). "
    "Eager = the model's code under jax.disable_jit(); unfused = the program's jaxpr run op by op (every primitive its own dispatch and kernel); "
    "no fusion = one compiled program with XLA's fusion passes disabled; jit = jax.jit call; AOT = jit(f).lower(...).compile() called directly. "
    "FLOPs and bytes are XLA's cost model of the optimized program; roofs are this device's measured peaks.\n"
  )
  return "\n".join(parts)
