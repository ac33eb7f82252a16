"""The hardware study's words: its findings (numbers the answer and the paragraphs quote), the one-line answer,
what it means and its caveats. Kept apart from run.py so that every sentence is built from a measured number."""

from __future__ import annotations

from experiments.hardware import analysis


def _median(rounds, threads, model, platform, get):
  return analysis.summary(analysis.series(rounds, threads, model, platform, get))["median"]


def _model_findings(rounds, model, sizes, top) -> dict:
  get = analysis.inference_getter
  first, last = sizes[0], sizes[-1]
  fused_first = _median(rounds, top, model, "cpu", get(first, "fused_s"))
  fused_last = _median(rounds, top, model, "cpu", get(last, "fused_s"))
  return {
    "batches": sizes,
    "fused_ms_first": None if fused_first is None else fused_first * 1e3,
    "fused_ms_last": None if fused_last is None else fused_last * 1e3,
    "per_example_gain": None if not (fused_first and fused_last) else (fused_first / first) / (fused_last / last),
    "train_step_ms": (_median(rounds, top, model, "cpu", lambda d: d["train"]["step_s"]) or 0) * 1e3,
    "efficiency_last": _median(rounds, top, model, "cpu", get(last, "efficiency")),
    "efficiency_first": _median(rounds, top, model, "cpu", get(first, "efficiency")),
  }


def findings(rounds, models, batches, threads, ratios) -> dict:
  top = max(threads)
  seen = sorted({d["platform"] for one in rounds for t in threads for a in one[t].values() if a for d in a["devices"]})
  checks = {t: [c for c in analysis.thread_checks(rounds, t, models[0]) if c] for t in threads}
  busy = {t: analysis.summary([c["cpu_per_wall"] for c in v])["median"] for t, v in checks.items()}
  gflops = {t: analysis.summary([c["gflops"] for c in v])["median"] for t, v in checks.items()}
  params = {m: next((one[top][m]["num_params"] for one in rounds if one[top].get(m)), None) for m in models}
  fusion = [r for r in ratios["fusion"] if r["ratio"] is not None]
  scaling = [r for r in ratios["threads"] if r["ratio"] is not None]
  return {
    "platforms_measured": seen,
    "platforms_not_measured": [p for p in analysis.PLATFORMS if p not in seen],
    "cpu_per_wall": busy,
    "check_gflops": gflops,
    "num_params": params,
    "models": {m: _model_findings(rounds, m, batches[m], top) for m in models},
    "fusion_range": [min(r["ratio"] for r in fusion), max(r["ratio"] for r in fusion)] if fusion else None,
    "fusion_resolved": sum(r["verdict"] != "tie" for r in fusion),
    "fusion_count": len(fusion),
    "threads_range": [min(r["ratio"] for r in scaling), max(r["ratio"] for r in scaling)] if scaling else None,
    "threads_faster": [r["comparison"] for r in scaling if r["verdict"] == "a larger"],
    "threads_slower": [r["comparison"] for r in scaling if r["verdict"] == "b larger"],
    "threads_tied": [r["comparison"] for r in scaling if r["verdict"] == "tie"],
  }


def _range(pair, fmt="{:.2f}") -> str:
  return "-" if not pair else f"{fmt.format(pair[0])}-{fmt.format(pair[1])}"


def answer(f: dict) -> str:
  models = f["models"]
  steps = ", ".join(f"{m} {v['train_step_ms']:.2f} ms" for m, v in models.items())
  batch1 = ", ".join(f"{m} {v['fused_ms_first']:.3f} ms" for m, v in models.items() if v["fused_ms_first"] is not None)
  gains = ", ".join(
    f"{m} {v['per_example_gain']:.0f}x" for m, v in models.items() if v["per_example_gain"] and len(v["batches"]) > 1
  )
  not_here = ", ".join(p.upper() for p in f["platforms_not_measured"]) or "none"
  threads = (
    f"2 XLA threads vs 1: time ratios {_range(f['threads_range'])} (2 threads faster, resolved: "
    f"{len(f['threads_faster'])}; slower: {len(f['threads_slower'])}; tie: {len(f['threads_tied'])})"
    if f["threads_range"]
    else "1 vs 2 threads: not measured"
  )
  return (
    f"Only the {', '.join(p.upper() for p in f['platforms_measured'])} could be measured here ({not_here}: not "
    f"measured, no such device here; the same command fills them): on it, compiling matters more than threads: "
    f"fused inference is {_range(f['fusion_range'], '{:.1f}')}x faster than op by op ({f['fusion_resolved']} of "
    f"{f['fusion_count']} resolved); a call at the smallest batch takes {batch1}"
    + (f", and batching cuts the time per example {gains}" if gains else "")
    + f"; a training step takes {steps}; {threads}."
  )


def _gains(models: dict) -> list[float]:
  return [v["per_example_gain"] for v in models.values() if v["per_example_gain"] and len(v["batches"]) > 1]


def paragraphs(f: dict) -> list[str]:
  models = f["models"]
  eff = ", ".join(
    f"{m} {v['efficiency_first']:.1%} at batch {v['batches'][0]}"
    + (f" and {v['efficiency_last']:.1%} at {v['batches'][-1]}" if len(v["batches"]) > 1 else "")
    for m, v in models.items()
    if v["efficiency_first"] is not None and v["efficiency_last"] is not None
  )
  gains = _gains(models)
  largest = max((n for n in f["num_params"].values() if n), default=0)
  busy = ", ".join(
    f"{t} thread(s): {v:.2f} CPU s per wall s, {f['check_gflops'][t]:.0f} GFLOP/s"
    for t, v in f["cpu_per_wall"].items()
    if v is not None
  )
  inference = (
    f"Inference: these models are small ({largest:,} parameters at most), and on the CPU a call at the smallest "
    f"batch is overhead-bound: the roofline efficiency (achieved FLOP/s over the roof at the model's intensity) is "
    f"{eff}."
  )
  if gains:
    inference += (
      f" Batching is what pays: the time per example falls {min(gains):.0f}x to {max(gains):.0f}x from the "
      "smallest to the largest batch, because the fixed cost of a call is shared. Which hardware for inference is "
      "first a question of batch size: one request at a time costs a call's fixed overhead on any device."
    )
  return [
    inference,
    "Fused vs op by op: running the jaxpr one primitive per dispatch (what an eager framework does) costs "
    f"{_range(f['fusion_range'], '{:.1f}')}x the compiled program's time ({f['fusion_resolved']} of "
    f"{f['fusion_count']} cells resolved). Compiling (jit/AOT) is a software decision that comes before any "
    "hardware one: compare it with the thread ratios below.",
    f"Threads: the matmul check says what each setting really got ({busy}). 1-thread over 2-thread time ratios "
    f"span {_range(f['threads_range'])}; 2 threads resolved faster: {', '.join(f['threads_faster']) or 'none'}; "
    f"resolved slower: {', '.join(f['threads_slower']) or 'none'}; ties: {', '.join(f['threads_tied']) or 'none'}. "
    "A second core shortens only work that XLA can split (large matmuls); a small program's time is dispatch and "
    "synchronization, which a second thread does not shorten (where 1 thread was resolved faster, handing work to "
    "a second thread cost more than it saved), and on a machine shared with other jobs the second core is often "
    "not free. For training and inference of models this small on this CPU, the thread count is not a lever.",
    "Against the workflow's 'CPU serial vs GPU parallel': this machine has no GPU or TPU, so the study measures only "
    "the CPU side; the CPU is not serial (XLA:CPU runs a matmul on several threads when cores are free), and for "
    "models of this size its cost is per-call overhead, not arithmetic. Whether a GPU wins is the same command's "
    "GPU column on a machine that has one; this run cannot say, and its answer does not claim it.",
  ]


def caveats(f: dict) -> list[str]:
  return [
    "Columns measured: "
    + ", ".join(p.upper() for p in f["platforms_measured"])
    + "; not measured (no such device here): "
    + (", ".join(p.upper() for p in f["platforms_not_measured"]) or "none")
    + ".",
    "A shared, loaded 2-core machine: absolute times move with the neighbours' load by tens of percent (see the "
    "load in Provenance); the ratios within a round are the robust figures, and even they depend on whether a "
    "second core was free while a round ran (the measured CPU seconds per wall second says how often it was).",
    "Peaks are the profile's quick peaks (256x256 matmul, a 16 MB copy): lower than the CPU's best, so roofline "
    "efficiencies are relative to a modest roof.",
    "Each cell's value per round is the median of a short timing protocol (5-10 calls, 0.2 s at most), and the "
    "interval is Student's t over the rounds' values; 'median' in the tables is over rounds.",
    "Weights are trained with fewer epochs than the configs' (time does not depend on them); the accuracies in "
    "Setup are therefore below the configs' expected ones.",
    "The 1-thread setting is the worker pinned to one CPU (XLA sizes its thread pools from the CPUs a process may "
    "use), plus `--xla_cpu_multi_thread_eigen=false` in the full run (--quick leaves it out so both settings share "
    "compiled programs); XLA:CPU has no single documented 'threads' flag (the often-quoted "
    "`intra_op_parallelism_threads=1` is a TensorFlow session option; XLA_FLAGS did not reject it, and a check "
    "here saw the process hold the same 17 threads as with no flag).",
    "Run time: the profiles run one after another on about one core, so the full run costs about its CPU seconds "
    "in wall time (Provenance's cpu_seconds in results.json); to fit the standard's 10 minutes it profiles two batch "
    "sizes (1 and 256, not 1, 32, 256: the batching curve has no middle point) and trains each model for half the "
    "epochs of earlier runs. Its first round trains the weights and compiles every profiled program in both "
    "settings (separate compilation cache entries, XLA_FLAGS being part of the key).",
    "When the machine's load exceeds its 2 cores, a process gets less than one core on average (the matmul check's "
    "CPU seconds per wall second below 1): then 2 threads cannot beat 1 however well the program splits, and the "
    "thread ratios measure the neighbours as much as XLA.",
  ]
