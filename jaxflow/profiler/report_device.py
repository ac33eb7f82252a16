"""One device's section of report.md: its measured peaks, precision, inference latency, cost and
roofline, training, multi-stream, kernel auto-tuning and memory, each a table of its own (report.py
puts the sections together with the findings, the trace and the protocol).
"""

from __future__ import annotations

from jaxflow.profiler.report_format import giga, ms, num, table, timing_cell

INFERENCE_HEADERS = [
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
]
INFERENCE_LEGEND = (
  "Eager = the model's Python under jax.disable_jit() (framework overhead included); op by op = the program's "
  "jaxpr, one dispatch per primitive; no fusion = one compiled program with XLA's fusion passes off; jit / AOT = "
  "the fused program through jax.jit / the compiled executable.\n"
)
COST_HEADERS = [
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
]
MULTISTREAM_HEADERS = [
  "batch",
  "K",
  "sync each",
  "dispatch K then sync",
  "async gain",
  "2 models sequential (per pair)",
  "2 models interleaved",
  "2 models, 2 threads",
  "gain interleaved / threads",
]


def device_section(d: dict, result: dict) -> list[str]:
  """The markdown parts of device `d`'s section, in page order."""
  parts = [f"## {d['name']}\n"]
  parts += _peaks(d["peaks"])
  parts += _precision(d)
  parts += _inference(d, result["problem"]["batch_unit"])
  parts += _cost(d)
  parts.append(training_section(d["training"]))
  parts += _multistream(d)
  parts += _autotune(d["autotune"])
  parts += _memory_and_notes(d)
  return parts


def _peaks(p: dict) -> list[str]:
  """The measured peaks: copy bandwidth in words, then the matmul peaks per dtype."""
  peak_rows = [[name, giga(v.get("flops_per_s")), v.get("n", v.get("error", ""))] for name, v in p["matmul"].items()]
  return [
    "Measured peaks ("
    + ("quick sizes, " if p.get("quick") else "")
    + f"{p.get('seconds', 0):.1f} s, load {p.get('load_average')}): "
    f"copy bandwidth **{giga(p['copy']['bytes_per_s'])} GB/s** "
    f"(read + write of {p['copy']['array_bytes'] / 2**20:.0f} MiB).\n",
    table(["matmul dtype", "peak G(FL)OP/s", "n (square)"], peak_rows),
  ]


def _precision(d: dict) -> list[str]:
  """The evaluation metric per precision against f32, then the int8 calibration choices if any."""
  acc = d["precision"]
  metric = next(iter(acc.values()))["metric"]
  rows = [
    [
      name,
      num(r["value"], 4),
      f"{r['change_vs_f32'] * (100 if metric == 'accuracy' else 1):+.2f}" + (" pt" if metric == "accuracy" else ""),
      num(r.get("max_abs_output_diff")),
      num(r.get("same_prediction_share"), 4),
      "; ".join(r.get("notes", [])),
    ]
    for name, r in acc.items()
  ]
  parts = [
    f"### Precision: test {metric} on the evaluation split ({next(iter(acc.values()))['examples']} examples)\n",
    table(
      ["precision", metric, "change vs f32", "max abs output diff vs f32", "same prediction as f32", "notes"], rows
    ),
  ]
  if d.get("calibration"):
    parts += _calibration(d["calibration"], metric)
  return parts


def _calibration(c: dict, metric: str) -> list[str]:
  """The int8 activation calibration choices tried on training data, and which one was timed."""
  rows = [[r["granularity"], r["method"], num(r["value"], 4), f"{r['change_vs_f32'] * 100:+.2f}"] for r in c["choices"]]
  return [
    "int8 activation calibration on training data (per-channel weights always; "
    f"percentile = {c['percentile']}th); timed: {c['timed']}\n",
    table(["activations", "method", metric, "change vs f32"], rows),
  ]


def _inference(d: dict, batch_unit: str) -> list[str]:
  """The latency table of every (precision, batch) row, its legend, and why no-fusion went unmeasured."""
  parts = [
    f"### Inference latency, ms: median [p10, p90] ({batch_unit} per batch)\n",
    table(INFERENCE_HEADERS, [_inference_row(r) for r in d["inference"]]),
    INFERENCE_LEGEND,
  ]
  reasons = {r["nofusion"]["reason"] for r in d["inference"] if r.get("nofusion", {}).get("applicable") is False}
  parts += [f"Compiled without fusion: not measured ({reason}).\n" for reason in sorted(reasons)]
  return parts


def _inference_row(r: dict) -> list:
  """One inference row: the timings of every variant, speedups, compile times, HLO and jaxpr counts."""
  t, h, nf = r["timings"], r["hlo"], r.get("nofusion", {})
  kernel_fusion = r["fusion_speedup"].get("nofusion_over_aot")
  check = r["fused_vs_unfused"]
  return [
    r["precision"],
    r["batch_size"],
    timing_cell(t["eager"]),
    timing_cell(t["unfused"]),
    timing_cell(t["nofusion"]) if "nofusion" in t else "n/a",
    timing_cell(t["jit"]),
    timing_cell(t["aot"]),
    f"{r['throughput_per_s']['aot']:.4g}",
    f"{r['fusion_speedup']['unfused_over_aot']:.1f}x",
    f"{kernel_fusion:.2f}x" if kernel_fusion else "n/a",
    f"{r['fusion_speedup']['jit_over_aot']:.2f}",
    f"{r['compile']['lower_s']:.3f} + {r['compile']['compile_s']:.3f}",
    f"{h['multi_op_fusions']} / {h['ops']}"
    + (f" ({nf['hlo']['multi_op_fusions']} / {nf['hlo']['ops']})" if nf.get("hlo") else ""),
    r["jaxpr"]["dispatched_per_call"],
    f"{num(check['max_abs_diff'])} ({'within' if check['within_tolerance'] else 'OVER'} {num(check['tolerance'])})",
  ]


def _cost(d: dict) -> list[str]:
  """XLA's cost model, the roofline and the memory of each AOT program."""
  rows = []
  for r in d["inference"]:
    c, rf, m = r["cost"], r["roofline"], r["memory"]
    rows.append(
      [
        r["precision"],
        r["batch_size"],
        num(c["flops"] / 1e6 if c["flops"] else None),
        num(c["bytes_accessed"] / 1e6 if c["bytes_accessed"] else None),
        num(c["arithmetic_intensity"]),
        giga(rf["achieved_flops_per_s"]),
        giga(rf["attainable_flops_per_s"]),
        num(rf["efficiency"]),
        rf["limited_by"],
        num(m.get("argument_bytes")),
        num(m.get("output_bytes")),
        num(m.get("temp_bytes")),
        ", ".join(f"{k}: {v}" for k, v in r["hlo"]["matmuls"].items()),
      ]
    )
  return ["### Cost, roofline and memory (AOT program)\n", table(COST_HEADERS, rows)]


def training_section(t: dict) -> str:
  """The training table: a synced step, async and K-step dispatch, host-fed input, the device gather."""
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
  rows += _host_fed_rows(t["host_fed"])
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


def _host_fed_rows(h: dict) -> list[list]:
  """The host-fed rows of the training table: input, step, serial and prefetched."""
  return [
    [
      "host-fed: input (assemble + transfer)",
      ms(h["input_s"]),
      f"{h['input_share_serial'] * 100:.0f}% of a serial step",
      "",
    ],
    ["host-fed: step on a ready batch", ms(h["step_s"]), f"{h['step_share_serial'] * 100:.0f}% of a serial step", ""],
    ["host-fed: serial (input then step)", ms(h["serial_s"]), "", f"{h['examples_per_s_serial']:.0f}"],
    [
      "host-fed: prefetched (next batch while the step runs)",
      ms(h["prefetched_s"]),
      f"device idle {h['device_idle_share_prefetched'] * 100:.0f}%",
      f"{h['examples_per_s_prefetched']:.0f}",
    ],
  ]


def _multistream(d: dict) -> list[str]:
  """Async dispatch of K batches and two models sharing the device, per batch size."""
  rows = [
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
  return ["### Multi-stream (f32, AOT): ms per batch\n", table(MULTISTREAM_HEADERS, rows)]


def _autotune(a: dict) -> list[str]:
  """Compile and run time per XLA:GPU autotune level, or why it does not apply."""
  parts = ["### Kernel auto-tuning\n"]
  if not a.get("applicable", True):
    return parts + [f"Not applicable: {a['reason']}.\n"]
  rows = [
    [
      lvl,
      f"{v['compile_s']:.2f}" if "compile_s" in v else v.get("error"),
      timing_cell(v["timing"]) if "timing" in v else "",
    ]
    for lvl, v in a["levels"].items()
  ]
  return parts + [table(["--xla_gpu_autotune_level", "compile s", "run ms"], rows), a.get("note", "") + "\n"]


def _memory_and_notes(d: dict) -> list[str]:
  """The device's memory statistics if it has them, then its notes as a list."""
  parts = []
  if d.get("memory_stats"):
    keys = [k for k in ("peak_bytes_in_use", "bytes_in_use", "bytes_limit") if k in d["memory_stats"]]
    parts.append(
      "Device memory (process-wide, since start): "
      + ", ".join(f"{k} {d['memory_stats'][k] / 2**20:.1f} MiB" for k in keys)
      + "\n"
    )
  return parts + [f"- {note}\n" for note in d.get("notes", [])]
