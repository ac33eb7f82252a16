"""One device's section of report.md: its measured peaks, precision, inference latency, cost and
roofline, training, multi-stream, kernel auto-tuning and memory, each a table of its own (report.py
puts the sections together with the findings, the trace and the protocol).
"""

from __future__ import annotations

from jaxflow.profiler.report_format import giga, ms, num, table, timing_cell

MAX_COLUMNS = 8  # every table in report.md; what does not fit is in report.json (the text says where)
INFERENCE_HEADERS = [
  "precision",
  "batch",
  "eager model code (no jit)",
  "unfused (op by op)",
  "compiled, no fusion",
  "jit",
  "AOT compiled",
  "AOT examples/s",
]
FUSION_HEADERS = [
  "precision",
  "batch",
  "fusion speedup (op by op / AOT)",
  "fusion-pass speedup (no fusion / AOT)",
  "jit / AOT",
  "lower + compile s",
  "HLO multi-op fusions / kernels (no fusion)",
  "ops dispatched op by op",
]
ROOFLINE_HEADERS = [
  "precision",
  "batch",
  "FLOP/byte",
  "achieved GFLOP/s",
  "roof GFLOP/s",
  "roof used (compute peak, bandwidth)",
  "efficiency",
  "limited by",
]
COST_HEADERS = [
  "precision",
  "batch",
  "MFLOP",
  "MB accessed",
  "argument B",
  "output B",
  "temp B",
  "matmuls as XLA runs them",
]
MULTISTREAM_HEADERS = [
  "batch",
  "K",
  "sync each",
  "dispatch K then sync (gain)",
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
  parts += _memory_and_notes(d, result.get("not_applicable", []))
  return parts


def _peaks(p: dict) -> list[str]:
  """The measured peaks: the matmul peaks per dtype, then the bandwidth per working set (the roofs' diagonals)."""
  peak_rows = [[name, giga(v.get("flops_per_s")), v.get("n", v.get("error", ""))] for name, v in p["matmul"].items()]
  return [
    "Measured peaks ("
    + ("quick sizes, " if p.get("quick") else "")
    + f"{p.get('seconds', 0):.1f} s, load {p.get('load_average')}): "
    f"device-memory copy bandwidth **{giga(p['copy']['bytes_per_s'])} GB/s** "
    f"(read + write of {p['copy']['array_bytes'] / 2**20:.0f} MiB).\n",
    table(["matmul dtype", "peak G(FL)OP/s", "n (square)"], peak_rows),
    *_ladder(p.get("copy_ladder", [])),
  ]


def _ladder(ladder: list[dict]) -> list[str]:
  """The bandwidth per working set, as used for the roofs, and the raw best-of-repeats measurement.

  Why both: the roofs use a monotone envelope (a smaller working set never slower, `peaks.monotone_ladder`),
  and the reader should see when a raw figure was lower and raised."""
  if not ladder:
    return []
  rows = [
    [
      f"{2 * e['array_bytes'] / 2**20:.3g}",
      giga(e["bytes_per_s"]),
      giga(e.get("measured_bytes_per_s", e["bytes_per_s"])),
      giga(e.get("median_bytes_per_s")),
    ]
    for e in sorted(ladder, key=lambda e: e["array_bytes"])
  ]
  raised = any(e.get("envelope") for e in ladder)
  return [
    table(["working set MiB (read + write)", "GB/s used as roof", "measured GB/s (best repeat)", "median GB/s"], rows),
    "A smaller working set is never reported slower than a larger one: it fits every cache level the larger one "
    "fits, so the roof used is the best bandwidth measured at its size or any larger one"
    + (" (some raw measurements were lower: loop overhead or noise; raised to that envelope)" if raised else "")
    + ".\n",
  ]


SAME_PREDICTION_LABEL = "share of examples predicted as f32 does (1.000 = all)"


def _precision(d: dict) -> list[str]:
  """The evaluation metric per precision against f32, its notes (each once), then the int8 calibration choices."""
  acc = d["precision"]
  metric = next(iter(acc.values()))["metric"]
  rows = [
    [
      name,
      num(r["value"], 4),
      f"{r['change_vs_f32'] * (100 if metric == 'accuracy' else 1):+.2f}" + (" pt" if metric == "accuracy" else ""),
      num(r.get("max_abs_output_diff")),
      "n/a (the reference)" if name == "f32" else _share(r.get("same_prediction_share")),
    ]
    for name, r in acc.items()
  ]
  notes: dict[str, list[str]] = {}
  for name, r in acc.items():
    for note in r.get("notes", []):
      notes.setdefault(note, []).append(name)
  parts = [
    f"### Precision: test {metric} on the evaluation split ({next(iter(acc.values()))['examples']} examples)\n",
    table(["precision", metric, "change vs f32", "max abs output diff vs f32", SAME_PREDICTION_LABEL], rows),
    *[f"- {', '.join(names)}: {note}\n" for note, names in notes.items()],
  ]
  if d.get("calibration"):
    parts += _calibration(d["calibration"], metric)
  return parts


def _share(value) -> str:
  """A share in [0, 1] with three decimals (1.000 = all), so it is not read as a count."""
  return "n/a" if value is None else f"{value:.3f}"


def _calibration(c: dict, metric: str) -> list[str]:
  """The int8 activation calibration choices tried on training data, and which one was timed."""
  rows = [[r["granularity"], r["method"], num(r["value"], 4), f"{r['change_vs_f32'] * 100:+.2f}"] for r in c["choices"]]
  return [
    "int8 activation calibration on training data (per-channel weights always; "
    f"percentile = {c['percentile']}th); timed: {c['timed']}\n",
    table(["activations", "method", metric, "change vs f32"], rows),
  ]


def _inference(d: dict, batch_unit: str) -> list[str]:
  """The latency table (per call; the variants are defined once, in the Protocol) and what eager measures, then
  the fusion table, the
  fused-vs-unfused check in one sentence, and why no-fusion went unmeasured (each reason once)."""
  rows = d["inference"]
  parts = [
    f"### Inference latency, ms per call (one batch): median [p10, p90] ({batch_unit} per batch)\n",
    table(INFERENCE_HEADERS, [_latency_row(r) for r in rows]),
    eager_explanation(rows),
    "### Fusion and compilation (same rows)\n",
    table(FUSION_HEADERS, [_fusion_row(r) for r in rows]),
    _agreement_sentence(rows),
  ]
  reasons = {r["nofusion"]["reason"] for r in rows if r.get("nofusion", {}).get("applicable") is False}
  parts += [f"Compiled without fusion: not measured ({reason}).\n" for reason in sorted(reasons)]
  return parts


def eager_explanation(rows: list[dict]) -> str:
  """What the eager column measures and why its per-example cost falls with the batch.

  Why: eager's time per call is mostly the framework's Python per op, the same at any batch size, so a
  larger batch can even time lower per call (noise on a near-constant); per example it is amortized."""
  out = (
    "Eager times are per call and mostly framework Python (one Python dispatch per op, independent of the "
    "batch), so per call they barely change with the batch (noise can put a larger batch lower) and per "
    "example they fall as the batch grows"
  )
  by_precision: dict[str, list[dict]] = {}
  for r in rows:
    by_precision.setdefault(r["precision"], []).append(r)
  first = next(iter(by_precision.values()), [])
  if len(first) > 1:
    lo, hi = min(first, key=lambda r: r["batch_size"]), max(first, key=lambda r: r["batch_size"])
    per_example = [r["timings"]["eager"]["median_s"] / r["batch_size"] for r in (lo, hi)]
    out += (
      f": {lo['precision']} eager per example {ms(per_example[0])} ms at batch {lo['batch_size']}, "
      f"{ms(per_example[1])} ms at batch {hi['batch_size']}"
    )
  return out + ".\n"


def _agreement_sentence(rows: list[dict]) -> str:
  """The fused-vs-unfused check of every row in one sentence (the figures are in report.json)."""
  over = [f"{r['precision']} batch {r['batch_size']}" for r in rows if not r["fused_vs_unfused"]["within_tolerance"]]
  verdict = f"OVER tolerance on {', '.join(over)}" if over else "within tolerance on every row"
  return (
    f"Fused vs unfused outputs: {verdict} (max abs difference and tolerance per row: report.json, "
    "`inference[].fused_vs_unfused`).\n"
  )


def _latency_row(r: dict) -> list:
  """One latency row: every variant's time per call and the AOT throughput."""
  t = r["timings"]
  return [
    r["precision"],
    r["batch_size"],
    timing_cell(t["eager"]),
    timing_cell(t["unfused"]),
    timing_cell(t["nofusion"]) if "nofusion" in t else "n/a",
    timing_cell(t["jit"]),
    timing_cell(t["aot"]),
    f"{r['throughput_per_s']['aot']:.4g}",
  ]


def _fusion_row(r: dict) -> list:
  """One fusion row: speedups, compile times, HLO and jaxpr counts."""
  h, nf = r["hlo"], r.get("nofusion", {})
  kernel_fusion = r["fusion_speedup"].get("nofusion_over_aot")
  return [
    r["precision"],
    r["batch_size"],
    f"{r['fusion_speedup']['unfused_over_aot']:.1f}x",
    f"{kernel_fusion:.2f}x" if kernel_fusion else "n/a",
    f"{r['fusion_speedup']['jit_over_aot']:.2f}",
    f"{r['compile']['lower_s']:.3f} + {r['compile']['compile_s']:.3f}",
    f"{h['multi_op_fusions']} / {h['ops']}"
    + (f" ({nf['hlo']['multi_op_fusions']} / {nf['hlo']['ops']})" if nf.get("hlo") else ""),
    r["jaxpr"]["dispatched_per_call"],
  ]


def _cost(d: dict) -> list[str]:
  """The roofline of each AOT program (against the roof the plot draws for it), then its cost and memory."""
  rows = d["inference"]
  roofline_rows = [
    [
      r["precision"],
      r["batch_size"],
      num(r["cost"]["arithmetic_intensity"]),
      giga(r["roofline"]["achieved_flops_per_s"]),
      giga(r["roofline"]["attainable_flops_per_s"]),
      _roof_used(d["peaks"], r["roofline"]),
      num(r["roofline"]["efficiency"]),
      r["roofline"]["limited_by"],
    ]
    for r in rows
  ]
  cost_rows = [
    [
      r["precision"],
      r["batch_size"],
      num(r["cost"]["flops"] / 1e6 if r["cost"]["flops"] else None),
      num(r["cost"]["bytes_accessed"] / 1e6 if r["cost"]["bytes_accessed"] else None),
      num(r["memory"].get("argument_bytes")),
      num(r["memory"].get("output_bytes")),
      num(r["memory"].get("temp_bytes")),
      ", ".join(f"{k}: {v}" for k, v in r["hlo"]["matmuls"].items()),
    ]
    for r in rows
  ]
  above = [f"{r['precision']} batch {r['batch_size']}" for r in rows if r["roofline"].get("above_roof")]
  return [
    "### Roofline (AOT program)\n",
    table(ROOFLINE_HEADERS, roofline_rows),
    "Each row is compared with its dtype's matmul peak and the bandwidth measured for a working set of its "
    "size (arguments + outputs + temporaries; often a cache level, not device memory); the roofline plot draws "
    "exactly these roofs, solid. Efficiency against device memory alone: report.json "
    "(`roofline.efficiency_vs_device_memory`).\n",
    *(
      [
        f"Above their roof: {', '.join(above)}: XLA's byte count includes re-reads served from a faster cache "
        "than the level measured for the working set, so the roof underestimates what the program can reach.\n"
      ]
      if above
      else []
    ),
    "### Cost and memory (AOT program, XLA's cost model and memory analysis)\n",
    table(COST_HEADERS, cost_rows),
  ]


def _roof_used(p: dict, rf: dict) -> str:
  """The roof a row is compared with, in words (compute peak, then the bandwidth and its working set)."""
  peak = (p["matmul"].get(rf.get("compute_roof")) or {}).get("flops_per_s")
  bandwidth = rf.get("bandwidth_bytes_per_s") or (peak / rf["ridge"] if peak and rf.get("ridge") else None)
  if not peak or not bandwidth:
    return "n/a"
  where = rf.get("bandwidth_working_set_bytes")
  level = f"<= {where / 2**20:.3g} MiB set" if where else None
  level = level or ("device memory" if bandwidth == p["copy"]["bytes_per_s"] else "a cache-level set")
  return f"{rf['compute_roof']} {giga(peak)} GFLOP/s, {giga(bandwidth)} GB/s ({level})"


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
      f"{ms(m['async_dispatch']['dispatched_per_batch_s'])} ({m['async_dispatch']['gain']:.2f}x)",
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


def _memory_and_notes(d: dict, elsewhere: list[str] = ()) -> list[str]:
  """The device's memory statistics if it has them, then its notes as a list, each once and none that the
  report's "Not applicable here" already says (why: the same note twice reads as two findings)."""
  parts = []
  if d.get("memory_stats"):
    keys = [k for k in ("peak_bytes_in_use", "bytes_in_use", "bytes_limit") if k in d["memory_stats"]]
    parts.append(
      "Device memory (process-wide, since start): "
      + ", ".join(f"{k} {d['memory_stats'][k] / 2**20:.1f} MiB" for k in keys)
      + "\n"
    )
  said = {_bare(n) for n in elsewhere}
  return parts + [f"- {note}\n" for note in dict.fromkeys(d.get("notes", [])) if _bare(note) not in said]


def _bare(note: str) -> str:
  """A note without its "<device>: " prefix, to compare notes written per device and for the report."""
  return note.split(": ", 1)[1] if ": " in note and note.startswith(("cpu", "gpu", "tpu")) else note
