"""How much do wrong training labels cost? The digits MLP trained with symmetric label noise at rates 0,
0.1, 0.2 and 0.4 and with pairflip noise (c -> c+1) at 0.2, 3 seeds each, evaluated on the clean test split;
once for the config's 30 epochs, once with early stopping on the test accuracy (patience 5) and the best
epoch's parameters restored. Writes results.md, results.json and accuracy_vs_noise.png into --out
(default: results/ beside this file).

  python experiments/label_noise/run.py                      # ~1 min on 2 CPU cores
  python experiments/label_noise/run.py --seeds=1 --out=/tmp/label_noise_check

Every run goes through `jaxflow.train(jaxflow.load_config("configs/digits_mlp.py", overrides), workdir)`;
the number of flipped labels is read from the workdir's label_noise.json (written only when noise is on).
Workdirs go to a temporary folder (deleted at the end) unless --workdir is given (experiments/label_noise/runs
is git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import jax  # noqa: E402

import jaxflow  # noqa: E402
from jaxflow.run.environment import describe_commit, git_state  # noqa: E402
from jaxflow.workdir import write_json, write_text  # noqa: E402

CONFIG = os.path.join(ROOT, "configs", "digits_mlp.py")
NOISE = (("symmetric", 0.0), ("symmetric", 0.1), ("symmetric", 0.2), ("symmetric", 0.4), ("pairflip", 0.2))
EARLY_STOP = [
  "train.early_stopping.enabled=True",
  "train.early_stopping.patience=5",
  "train.early_stopping.restore_best=True",
]
MODES = (("30 epochs", []), ("early stop + restore_best", EARLY_STOP))


def run_one(kind: str, rate: float, mode: str, extra: list[str], seed: int, workdir: str) -> dict:
  overrides = [f"data.label_noise.kind={kind}", f"data.label_noise.rate={rate}", *extra, f"seed={seed}"]
  summary = jaxflow.train(jaxflow.load_config(CONFIG, overrides), workdir, quiet=True)
  noise_path = os.path.join(workdir, "label_noise.json")
  noise = json.load(open(noise_path)) if os.path.exists(noise_path) else None
  return {
    "kind": kind,
    "rate": rate,
    "mode": mode,
    "seed": seed,
    "overrides": overrides,
    "label_noise_json": noise is not None,
    "examples": noise["examples"] if noise else None,
    "flipped": noise["flipped"] if noise else 0,
    "realized_rate": noise["realized_rate"] if noise else 0.0,
    "expected_rate": noise["expected_rate"] if noise else 0.0,
    "accuracy": summary["final"]["eval"]["accuracy"],
    "eval_loss": summary["final"]["eval"]["loss"],
    "best_accuracy": summary["best"]["value"],
    "best_epoch": summary["best"]["epoch"],
    "train_accuracy_noisy_labels": summary["final"]["train"]["accuracy"],
    "epochs_completed": summary["epochs_completed"],
    "stopped_early": summary["stopped_early"],
    "restored_best_step": summary["restored_best_step"],
    "wall_seconds": summary["wall_seconds"],
  }


def mean_sd(values: list[float], digits: int = 4) -> str:
  sd = statistics.stdev(values) if len(values) > 1 else 0.0
  return f"{statistics.mean(values):.{digits}f} ± {sd:.{digits}f}"


def label(kind: str, rate: float) -> str:
  return f"{kind} {rate:g}"


def report(results: dict) -> str:
  runs, seeds = results["runs"], results["seeds"]

  def cell(kind, rate, mode):
    return sorted(
      (r for r in runs if r["kind"] == kind and r["rate"] == rate and r["mode"] == mode), key=lambda r: r["seed"]
    )

  plain, early = MODES[0][0], MODES[1][0]
  lines = [
    "# Label noise on digits: how much do wrong training labels cost?",
    "",
    "**Question.** The digits MLP (configs/digits_mlp.py: 256-256, dropout 0.1, Adam 3e-3 cosine, 30 epochs) is "
    "trained on the 1437 training images with a fraction of their labels flipped (`data.label_noise`, drawn from "
    "the `noise` stream): symmetric (to any other class) or pairflip (c → c+1). How much test accuracy (clean test "
    "labels) is lost, and does stopping early at the best test epoch win it back?",
    "",
    "**Command.** `python experiments/label_noise/run.py`; each run is `jaxflow.train(jaxflow.load_config("
    "'configs/digits_mlp.py', ['data.label_noise.kind=K', 'data.label_noise.rate=R', 'seed=S']), "
    f"workdir, quiet=True)`, plus `{' '.join(EARLY_STOP)}` for the early-stopping rows; "
    f"seeds {', '.join(map(str, range(seeds)))}.",
    "",
    f"**Result.** Test accuracy, mean ± standard deviation over {seeds} seeds. Flipped: training labels changed "
    "(label_noise.json `flipped` of `examples`; per seed). Train accuracy is measured against the noisy labels the "
    "model was given (last logged steps, dropout on).",
    "",
    "| noise | flipped labels (per seed) | realized rate | test accuracy, 30 epochs | Δ vs no noise "
    "| best epoch's test accuracy (epoch) | early stop + restore_best: test accuracy (epochs run) "
    "| train accuracy on noisy labels, 30 epochs |",
    "|---|---|---|---|---|---|---|---|",
  ]
  clean = statistics.mean(r["accuracy"] for r in cell("symmetric", 0.0, plain))
  for kind, rate in NOISE:
    p, e = cell(kind, rate, plain), cell(kind, rate, early)
    flipped = ", ".join(str(r["flipped"]) for r in p) + (
      f" of {p[0]['examples']}" if p[0]["examples"] else " (no label_noise.json: noise off)"
    )
    realized = mean_sd([r["realized_rate"] for r in p], 3)
    acc = statistics.mean(r["accuracy"] for r in p)
    best = f"{mean_sd([r['best_accuracy'] for r in p])} ({', '.join(str(r['best_epoch']) for r in p)})"
    stop = f"{mean_sd([r['accuracy'] for r in e])} ({', '.join(str(r['epochs_completed']) for r in e)})"
    train = mean_sd([r["train_accuracy_noisy_labels"] for r in p], 3)
    lines.append(
      f"| {label(kind, rate)} | {flipped} | {realized} | {mean_sd([r['accuracy'] for r in p])} | {acc - clean:+.4f} | "
      f"{best} | {stop} | {train} |"
    )
  lines += [
    "",
    "Per seed, test accuracy: 30 epochs / early stop + restore_best (the same seed draws the same flips in both).",
    "",
    "| noise | " + " | ".join(f"seed {s}" for s in range(seeds)) + " |",
    "|---|" + "---|" * seeds,
  ]
  for kind, rate in NOISE:
    pairs = zip(cell(kind, rate, plain), cell(kind, rate, early))
    lines.append(
      f"| {label(kind, rate)} | " + " | ".join(f"{a['accuracy']:.4f} / {b['accuracy']:.4f}" for a, b in pairs) + " |"
    )
  lines += [
    "",
    "@@DISCUSSION@@",
    "",
    f"**Runtime.** {results['runtime_seconds']:.0f} s for {len(runs)} runs "
    f"({results['device']}; a JAX persistent compilation cache in the temporary workdir lets later seeds reuse "
    "the compiled programs; it does not change any number). jaxflow tree: " + results["tree"] + ".",
    "",
  ]
  return "\n".join(lines)


def plot(results: dict, path: str) -> None:
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  runs = results["runs"]
  fig, ax = plt.subplots(figsize=(6.6, 5.0))
  symmetric = sorted({r["rate"] for r in runs if r["kind"] == "symmetric"})
  for (mode, _), colour, marker, shift in zip(MODES, ("C0", "C1"), ("o", "s"), (-0.004, 0.004)):
    for kind, filled in (("symmetric", True), ("pairflip", False)):
      rs = [r for r in runs if r["mode"] == mode and r["kind"] == kind]
      if not rs:
        continue
      dx = shift if kind == "symmetric" else shift + 0.014  # pairflip sits beside symmetric at the same rate
      ax.scatter(
        [r["rate"] + dx for r in rs],
        [r["accuracy"] for r in rs],
        color=colour,
        marker=marker,
        alpha=0.35,
        s=16,
        facecolors=colour if filled else "none",
      )
      rates = symmetric if kind == "symmetric" else sorted({r["rate"] for r in rs})
      means = [statistics.mean(r["accuracy"] for r in rs if r["rate"] == x) for x in rates]
      if kind == "symmetric":
        ax.plot([x + dx for x in rates], means, color=colour, marker=marker, label=f"symmetric, {mode}")
      else:
        ax.scatter(
          [x + dx for x in rates],
          means,
          color=colour,
          marker="D",
          s=60,
          facecolors="none",
          linewidths=1.6,
          label=f"pairflip, {mode}",
          zorder=3,
        )
  ax.set_xticks(symmetric, [f"{x:g}" for x in symmetric])
  ax.set_xlabel("label noise rate (fraction of training labels flipped)")
  ax.set_ylabel("test accuracy (clean test labels)")
  ax.set_title(f"Digits MLP with noisy training labels: mean (line) and {results['seeds']} seeds (dots)", fontsize=10)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
  fig.tight_layout()
  fig.savefig(path, dpi=120)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
  parser.add_argument("--workdir", default=None, help="keep the runs here (default: a temporary folder, deleted)")
  parser.add_argument("--seeds", type=int, default=3)
  parser.add_argument(
    "--replot", action="store_true", help="rewrite results.md and the plot from --out/results.json, train nothing"
  )
  args = parser.parse_args()
  if args.replot:
    with open(os.path.join(args.out, "results.json")) as f:
      write_outputs(json.load(f), args.out)
    return

  start = time.perf_counter()
  root = args.workdir or tempfile.mkdtemp(prefix="jaxflow_label_noise_")
  jax.config.update("jax_compilation_cache_dir", os.path.join(root, "jax_cache"))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  results = {
    "config": "configs/digits_mlp.py",
    "seeds": args.seeds,
    "tree": describe_commit(git_state(root=ROOT)),
    "runs": [],
  }
  try:
    for kind, rate in NOISE:
      for mode, extra in MODES:
        for seed in range(args.seeds):
          name = f"{kind}_{rate:g}_{'early' if extra else 'full'}_s{seed}"
          r = run_one(kind, rate, mode, extra, seed, os.path.join(root, name))
          results["runs"].append(r)
          print(
            f"{kind:9s} {rate:4.2f} {mode:26s} seed={seed}: flipped {r['flipped']:4d}  test {r['accuracy']:.4f}  "
            f"best {r['best_accuracy']:.4f} @ {r['best_epoch']}  epochs {r['epochs_completed']}",
            flush=True,
          )
    results["runtime_seconds"] = time.perf_counter() - start
    results["device"] = f"{jax.devices()[0].platform}, {os.cpu_count()} CPU cores"
    write_outputs(results, args.out)
  finally:
    if args.workdir is None:
      shutil.rmtree(root, ignore_errors=True)


def write_outputs(results: dict, out: str) -> None:
  """results.json, the plot, and results.md: the generated tables plus discussion.md (written by hand
  for the recorded numbers; a rerun with other numbers keeps the tables right but needs it reread)."""
  os.makedirs(out, exist_ok=True)
  text = report(results)
  discussion_path = os.path.join(out, "discussion.md")
  discussion = open(discussion_path).read().strip() if os.path.exists(discussion_path) else "(no discussion.md yet)"
  write_text(os.path.join(out, "results.md"), text.replace("@@DISCUSSION@@", discussion))
  write_json(os.path.join(out, "results.json"), results)
  plot(results, os.path.join(out, "accuracy_vs_noise.png"))
  print(text.replace("@@DISCUSSION@@", ""))


if __name__ == "__main__":
  main()
