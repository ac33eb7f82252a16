"""Which hardware for training, which for inference? Every model family profiled by `jaxflow.profile` on every
device JAX sees, on the CPU with 1 and with 2 XLA threads, in interleaved rounds.

  python experiments/hardware/run.py            # 4 families x 2 thread settings x 5 rounds, batch 1 and 256
  python experiments/hardware/run.py --quick    # the MLP, 2 rounds, batch 8 only: seconds of timing

Why rounds and not seeds: the study measures time, and a model's weights do not change its time; what varies
between repetitions is the machine (the neighbours' load, caches, frequency). A round profiles every model
once in each thread setting, back to back (the order of the settings alternating between rounds), so the
ratios of a round (op by op / fused, 1 / 2 threads) are paired; >= 5 rounds give their medians and intervals.

Weights: each config is trained once, by its first profile (fewer epochs than its file: the time of a
forward or a step does not depend on how well trained the weights are); every later profile reads them
through `init_from`. On a machine with a GPU or TPU the same command fills those columns: `jaxflow.profile` measures
every backend JAX sees; here the tables say "not measured: no such device here".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments.common import report, study
from experiments.hardware import analysis, figures, meaning
from experiments.hardware.worker import THREAD_FLAGS
from experiments.harness_extras import QUICK_MLP

QUESTION = "Which hardware for training, which for inference? CPU serial vs GPU parallel"
HERE = os.path.dirname(os.path.abspath(__file__))
# name -> (config, training overrides, batch sizes profiled)
# Two batch sizes (the smallest and a large one: what batching buys) and short training: the full run's profiles
# run one after another on about one core, ~650 CPU-s with three batch sizes and twice the epochs (measured), too
# close to the standard's 10 minutes.
MODELS = {
  "MLP": ("configs/digits_mlp.py", ("train.epochs=5",), "1,256"),
  "CNN": ("configs/digits_cnn.py", ("train.epochs=2",), "1,256"),
  "RNN": ("configs/digits_rnn.py", ("train.epochs=2",), "1,256"),
  "GCN (karate)": ("configs/karate_gcn.py", ("train.epochs=50",), "1"),
}
# --quick: one step per dispatch, so the training run compiles the very step program the profile's training-speed
# stage times (jaxflow's default K-step epoch program would be a second compile, ~4 CPU-s cold).
QUICK_MODELS = {"MLP": ("configs/digits_mlp.py", (*QUICK_MLP, "train.steps_per_dispatch=1"), "8")}
PROTOCOL = {"warmup": 2, "repeats": 10, "min_repeats": 5, "max_seconds": 0.2, "max_rotations": 4, "rounds": 1}
QUICK_PROTOCOL = {"warmup": 1, "repeats": 3, "min_repeats": 2, "max_seconds": 0.02, "max_rotations": 2, "rounds": 1}
THREADS = (1, 2)
# --quick: pinning only (no Eigen flag), so both settings share one compilation cache entry per program and the
# 1-thread worker loads what the 2-thread worker compiled (a cold profile compiles for ~20 s of CPU).
QUICK_FLAGS = {1: "", 2: ""}


class Workers:
  """One worker.py process per thread setting; `ask(threads, request)` profiles and returns its answer."""

  def __init__(self, threads: tuple[int, ...], flags: dict[int, str]):
    self.procs = {}
    for t in threads:
      env = dict(os.environ)
      env["XLA_FLAGS"] = " ".join(f for f in (os.environ.get("XLA_FLAGS", ""), flags[t]) if f)
      cmd = [sys.executable, os.path.join(HERE, "worker.py"), f"--threads={t}"]
      self.procs[t] = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

  def ask(self, threads: int, request: dict) -> dict | None:
    proc = self.procs[threads]
    proc.stdin.write(json.dumps(request) + "\n")
    proc.stdin.flush()
    for line in proc.stdout:
      if line.startswith("RESULT "):
        return json.loads(line[len("RESULT ") :])
    print(f"[hardware] the {threads}-thread worker ended (exit {proc.wait()}) without an answer", flush=True)
    return None

  def close(self) -> None:
    """Ends the workers (their stdin closed: they finish); one that has not ended within 60 s is killed."""
    for proc in self.procs.values():
      if proc.stdin and not proc.stdin.closed:
        proc.stdin.close()
    for proc in self.procs.values():
      try:
        proc.wait(timeout=60)
      except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_rounds(
  session: study.Session, models: dict, n_rounds: int, protocol: dict, flags: dict, *, peaks_once: bool = False
) -> tuple[list, dict]:
  """rounds[r][threads][model] = the worker's answer, and {model: (weights run, test accuracy)}. Round 0's first
  profile of a model (2 threads: the faster) trains it into its workdir's train/ (the profile's own training, so
  its compiled programs serve the profile); every later profile reads those weights (init_from). The settings
  alternate their order between rounds. `peaks_once` (--quick): each setting measures its peaks in round 0 only
  (~1 CPU-s a time); the thread check still runs in every round."""
  rounds, trained = [], {}
  workers = Workers(THREADS, flags)
  try:
    for r in range(n_rounds):
      one = {t: {} for t in THREADS}
      order = THREADS[::-1] if r % 2 == 0 else THREADS
      for i, (name, (config, overrides, batches)) in enumerate(models.items()):
        for t in order:
          workdir = os.path.join(session.root, f"profile_r{r}_t{t}_{i}")
          weights = [f"init_from={trained[name][0]}"] if name in trained else []
          cache = [f"compilation_cache={session.cache}"] if session.cache else []
          request = {
            "config": config,
            "overrides": [*overrides, *weights, *cache],
            "workdir": workdir,
            "batch_sizes": batches,
            "protocol": protocol,
            "reuse_peaks": i > 0 or (peaks_once and r > 0),  # once per round and setting, by its first model
            "thread_check": i == 0,
          }
          answer = one[t][name] = workers.ask(t, request)
          if answer and name not in trained:
            trained[name] = (os.path.join(workdir, "train"), answer["devices"][0]["accuracy"])
          if answer:
            print(f"[hardware] round {r} {t} thread(s) {name}: {answer['wall_s']:.1f} s", flush=True)
      rounds.append(one)
  finally:
    workers.close()
  return rounds, trained


def setup_lines(models, trained, rounds, protocol, flags, peaks_once: bool = False) -> list[str]:
  first = rounds[0][max(THREADS)]
  seen = sorted({d["name"] for one in rounds for t in THREADS for a in one[t].values() if a for d in a["devices"]})
  lines = [
    f"Devices JAX saw and `jaxflow.profile` measured: {', '.join(seen) or '-'}; measured columns: "
    + ", ".join(p.upper() for p in analysis.PLATFORMS if any(s.startswith(p) for s in seen))
    + "; every other column says 'not measured: no such device here' (the same command fills it where one is).",
    "Models (configs/, trained once by the first profile with fewer epochs, later ones reading its weights): "
    + "; ".join(
      f"{n}: `{c}` {' '.join(o)}, test accuracy {trained[n][1]:.3f}, batch sizes {b}" for n, (c, o, b) in models.items()
    ),
    f"{len(rounds)} rounds; a round profiles every model in each thread setting back to back (order of the settings "
    "alternating), so ratios are paired within a round. Each profile: f32, the timing protocol "
    + ", ".join(f"{k}={v}" for k, v in protocol.items())
    + " (the median of its timed calls is the round's value); peak matmul and bandwidth measured once per "
    + ("setting, in round 0" if peaks_once else "round and setting")
    + " (the profile's quick peaks).",
    "Thread settings: 1 thread = the worker pinned to one CPU (sched_setaffinity before jax starts) plus "
    f"`XLA_FLAGS={flags[1] or '(none)'}`; 2 threads = both CPUs, no flag. Their effect is measured (the table "
    "'The thread settings as measured').",
    f"Worker processes: {len(THREADS)}, one per setting, long-lived (imports and compiles paid once); "
    "parameters per model: " + ", ".join(f"{n} {a['num_params']:,}" for n, a in first.items() if a) + ".",
  ]
  return lines


def main(argv=None) -> None:
  args = study.parse_args(__file__, argv, description=__doc__.split("\n\n")[0])
  models = QUICK_MODELS if args.quick else MODELS
  protocol = QUICK_PROTOCOL if args.quick else PROTOCOL
  flags = QUICK_FLAGS if args.quick else THREAD_FLAGS
  with study.session(args) as session:  # --seeds is the number of rounds here (default 5, quick 2)
    rounds, trained = run_rounds(session, models, args.seeds, protocol, flags, peaks_once=args.quick)
  measured = {"rounds": rounds, "trained": trained, "provenance": session.clock.finish()}
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, "rounds.json"), "w") as f:  # the raw measurements, written before any analysis
    json.dump(measured, f, indent=1)
  render(args, models, protocol, flags, measured)


def render(args, models: dict, protocol: dict, flags: dict, measured: dict) -> None:
  """report.md, results.json and the PNGs from the measured rounds (rounds.json)."""
  rounds, trained = measured["rounds"], measured["trained"]
  rounds = [{int(t): v for t, v in one.items()} for one in rounds]  # JSON keys are strings
  names, threads = list(models), list(THREADS)
  batches = {n: [int(b) for b in spec.split(",")] for n, (_, _, spec) in models.items()}
  ratios = analysis.speed_ratios(rounds, names, batches, threads)
  tables = [
    analysis.machine_table(rounds, names, threads),
    analysis.inference_table(rounds, names, batches, threads),
    analysis.training_table(rounds, names, threads),
    analysis.fusion_table(rounds, names, batches, threads),
  ]
  differences = [
    analysis.ratio_table("Fused vs op by op (CPU, 2 threads)", ratios["fusion"], "Op-by-op time over fused time."),
    analysis.ratio_table(
      "1 vs 2 XLA threads (CPU)", ratios["threads"], "1-thread time over 2-thread time (> 1: 2 threads faster)."
    ),
  ]
  plots = figures.draw(args.out, rounds, names, batches, threads, ratios)
  findings = meaning.findings(rounds, names, batches, threads, ratios)
  facts = {
    "title": "Hardware: which for training, which for inference (CPU 1 vs 2 threads; GPU/TPU where present)",
    "question": QUESTION,
    "answer": meaning.answer(findings),
    "command": args.command,
    "quick": args.quick,
    "seeds": len(rounds),
    "setup": setup_lines(models, trained, rounds, protocol, flags, peaks_once=args.quick),
    "arms": {
      n: {
        "config": c,
        "overrides": list(o),
        "batch_sizes": b,
        "per_seed": [analysis.round_cells(one, n, threads) for one in rounds],  # per round
      }
      for n, (c, o, b) in models.items()
    },
    "differences": ratios["fusion"] + ratios["threads"],
    "plots": plots,
    "meaning": meaning.paragraphs(findings),
    "caveats": meaning.caveats(findings),
    "findings": findings,
    "rounds_file": "rounds.json",
    "provenance": measured["provenance"],
  }
  report.write(args.out, facts, tables, differences)
  print(f"[hardware] wrote {os.path.join(args.out, 'report.md')}", flush=True)


if __name__ == "__main__":
  main()
