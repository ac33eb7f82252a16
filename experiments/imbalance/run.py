"""Which remedy for a rare class works? The digits MLP trained on a skewed training set (class 1 kept at
10 examples, every other class at 135; the test split untouched, 36 examples of class 1) with no
remedy, oversampling, inverse-frequency or effective-number class weights, or the focal loss; 3 seeds
each. Writes results.md, results.json and imbalance.png into --out (default: results/ beside this file).

  python experiments/imbalance/run.py                       # ~1-1.5 min on 2 CPU cores
  python experiments/imbalance/run.py --seeds=1 --out=/tmp/imbalance_check

Every run goes through `jaxflow.train(jaxflow.load_config("configs/digits_mlp.py", overrides), workdir)`.
Workdirs go to a temporary folder (deleted at the end) unless --workdir is given (e.g. experiments/imbalance/runs,
which git ignores). `seed` is the root of every stream, so the 10 kept examples of class 1 (drawn from the
`data` stream) change with the seed too; within a seed every remedy sees the same skewed set and the same
initial parameters, so differences between remedies are paired per seed.
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
RARE = 1
RARE_COUNT, OTHER_COUNT = 10, 135  # the smallest digits training class has 139 examples
SKEW = "data.class_counts=(" + ", ".join(str(RARE_COUNT if c == RARE else OTHER_COUNT) for c in range(10)) + ")"
BALANCED = "data.class_counts=(" + ", ".join([str(OTHER_COUNT)] * 10) + ")"
# (name, overrides); the first row is a reference (no skew), not a remedy.
ARMS = (
  ("reference: no skew (135 of every class)", [BALANCED]),
  ("none", [SKEW]),
  ("oversample", [SKEW, "data.sampler=oversample"]),
  ("inverse_frequency", [SKEW, "class_weights=inverse_frequency"]),
  ("effective_number (beta=0.999)", [SKEW, "class_weights=effective_number", "class_weights_beta=0.999"]),
  ("effective_number (beta=0.99)", [SKEW, "class_weights=effective_number", "class_weights_beta=0.99"]),
  ("focal (gamma=2)", [SKEW, "loss=focal", "focal_gamma=2.0"]),
)
METRICS = (
  ("accuracy", "test accuracy"),
  ("balanced_accuracy", "balanced accuracy"),
  ("macro_f1", "macro F1"),
  ("rare_recall", f"recall of class {RARE}"),
  ("rare_precision", f"precision of class {RARE}"),
)


def run_one(arm: str, overrides: list[str], seed: int, workdir: str) -> dict:
  summary = jaxflow.train(jaxflow.load_config(CONFIG, [*overrides, f"seed={seed}"]), workdir, quiet=True)
  final = summary["final"]
  return {
    "arm": arm,
    "seed": seed,
    "overrides": [*overrides, f"seed={seed}"],
    "accuracy": final["eval"]["accuracy"],
    "balanced_accuracy": final["eval"]["balanced_accuracy"],
    "macro_f1": final["eval"]["macro_f1"],
    "rare_recall": final["per_class"]["recall"][RARE],
    "rare_precision": final["per_class"]["precision"][RARE],
    "rare_support": final["per_class"]["support"][RARE],
    "recall_per_class": final["per_class"]["recall"],
    "confusion_rare_row": final["confusion"][RARE],
    "train_accuracy": final["train"]["accuracy"],
    "steps": summary["steps"],
    "wall_seconds": summary["wall_seconds"],
  }


def mean_sd(values: list[float]) -> str:
  sd = statistics.stdev(values) if len(values) > 1 else 0.0
  return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def report(results: dict, seeds: int) -> str:
  runs = results["runs"]
  by_arm = {arm: [r for r in runs if r["arm"] == arm] for arm, _ in ARMS}
  none = {r["seed"]: r for r in by_arm["none"]}
  lines = [
    "# Class imbalance on digits: which remedy helps the rare class?",
    "",
    f"**Question.** The digits MLP (configs/digits_mlp.py, 30 epochs) is trained on a skewed training set: "
    f"class {RARE} kept at {RARE_COUNT} examples, every other class at {OTHER_COUNT} "
    f"({RARE_COUNT + 9 * OTHER_COUNT} examples, ratio {OTHER_COUNT / RARE_COUNT:.1f}:1). The test split is "
    f"untouched (360 examples, {by_arm['none'][0]['rare_support']} of class {RARE}). "
    "Does oversampling, a class-weighted loss or the focal loss bring the rare class back?",
    "",
    "**Command.** `python experiments/imbalance/run.py` (each run: "
    f"`jaxflow.train(jaxflow.load_config('configs/digits_mlp.py', ['{SKEW}', REMEDY..., 'seed=S']), "
    f"workdir, quiet=True)`, seeds {', '.join(str(s) for s in range(seeds))}).",
    "",
    f"**Result.** Final-epoch test metrics, mean ± standard deviation over {seeds} seeds "
    "(from summary.json: `final.eval` and `final.per_class`).",
    "",
    "| remedy | overrides | " + " | ".join(label for _, label in METRICS) + " |",
    "|---|---|" + "---|" * len(METRICS),
  ]
  for arm, overrides in ARMS:
    shown = " ".join(f"`{o}`" for o in overrides if o not in (SKEW, BALANCED)) or (
      "`" + BALANCED + "`" if BALANCED in overrides else "-"
    )
    cells = [mean_sd([r[key] for r in by_arm[arm]]) for key, _ in METRICS]
    lines.append(f"| {arm} | {shown} | " + " | ".join(cells) + " |")
  lines += [
    "",
    f"Per seed: recall of class {RARE} (of {by_arm['none'][0]['rare_support']} test examples; one example = "
    f"{1 / by_arm['none'][0]['rare_support']:.3f}) and balanced accuracy, "
    "with the difference from `none` at the same seed.",
    "",
    "| remedy | " + " | ".join(f"seed {s}: recall (Δ) | seed {s}: bal. acc. (Δ)" for s in range(seeds)) + " |",
    "|---|" + "---|---|" * seeds,
  ]
  for arm, _ in ARMS:
    cells = []
    for r in sorted(by_arm[arm], key=lambda r: r["seed"]):
      base = none[r["seed"]]
      cells.append(f"{r['rare_recall']:.3f} ({r['rare_recall'] - base['rare_recall']:+.3f})")
      cells.append(f"{r['balanced_accuracy']:.3f} ({r['balanced_accuracy'] - base['balanced_accuracy']:+.3f})")
    lines.append(f"| {arm} | " + " | ".join(cells) + " |")
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

  arms = [arm for arm, _ in ARMS]
  labels = [
    "no skew\n(reference)",
    "none",
    "oversample",
    "inverse\nfrequency",
    "effective\nnumber\nβ=0.999",
    "effective\nnumber\nβ=0.99",
    "focal\nγ=2",
  ]
  fig, axes = plt.subplots(1, 2, figsize=(12, 4.4))
  for ax, (key, title) in zip(
    axes, (("rare_recall", f"recall of rare class {RARE} (test)"), ("balanced_accuracy", "balanced accuracy (test)"))
  ):
    for i, arm in enumerate(arms):
      runs = sorted((r for r in results["runs"] if r["arm"] == arm), key=lambda r: r["seed"])
      values = [r[key] for r in runs]
      if i == 0:
        ax.axvspan(-0.5, 0.5, color="0.9", zorder=0)  # the reference is no remedy: shaded apart
      ax.hlines(statistics.mean(values), i - 0.3, i + 0.3, color="0.2", lw=2, label="mean" if i == 0 else None)
      offsets = [(-0.15 + 0.3 * j / max(len(values) - 1, 1)) for j in range(len(values))]
      for j, (o, v) in enumerate(zip(offsets, values)):
        ax.scatter(i + o, v, color=f"C{j + 1}", s=22, zorder=3, label=f"seed {runs[j]['seed']}" if i == 0 else None)
    ax.set_xticks(range(len(arms)), labels, fontsize=8)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
  for ax, key in zip(axes, ("rare_recall", "balanced_accuracy")):
    values = [r[key] for r in results["runs"]]
    pad = 0.1 * (max(values) - min(values))
    ax.set_ylim(min(values) - pad, min(1.0, max(values) + pad) + 0.005)
    ax.set_xlim(-0.5, len(arms) - 0.5)
  axes[0].legend(loc="upper right", fontsize=8, ncol=4)
  fig.suptitle(f"Digits MLP, class {RARE} kept at {RARE_COUNT} training examples, others at {OTHER_COUNT}", fontsize=11)
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
      results = json.load(f)
    write_outputs(results, args.out, len({r["seed"] for r in results["runs"]}))
    return

  start = time.perf_counter()
  root = args.workdir or tempfile.mkdtemp(prefix="jaxflow_imbalance_")
  jax.config.update("jax_compilation_cache_dir", os.path.join(root, "jax_cache"))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  results = {
    "config": "configs/digits_mlp.py",
    "skew": SKEW,
    "rare_class": RARE,
    "tree": describe_commit(git_state(root=ROOT)),
    "runs": [],
  }
  try:
    for arm, overrides in ARMS:
      for seed in range(args.seeds):
        slug = "".join(ch if ch.isalnum() else "_" for ch in arm)[:40]
        r = run_one(arm, overrides, seed, os.path.join(root, f"{slug}_s{seed}"))
        results["runs"].append(r)
        print(
          f"{arm:42s} seed={seed}: acc {r['accuracy']:.4f}  bal {r['balanced_accuracy']:.4f}  "
          f"F1 {r['macro_f1']:.4f}  recall[{RARE}] {r['rare_recall']:.4f}",
          flush=True,
        )
    results["runtime_seconds"] = time.perf_counter() - start
    results["device"] = f"{jax.devices()[0].platform}, {os.cpu_count()} CPU cores"
    write_outputs(results, args.out, args.seeds)
  finally:
    if args.workdir is None:
      shutil.rmtree(root, ignore_errors=True)


def write_outputs(results: dict, out: str, seeds: int) -> None:
  """results.json, the plot, and results.md: the generated tables plus discussion.md (written by hand
  for the recorded numbers; a rerun with other numbers keeps the tables right but needs it reread)."""
  os.makedirs(out, exist_ok=True)
  text = report(results, seeds)
  discussion_path = os.path.join(out, "discussion.md")
  discussion = open(discussion_path).read().strip() if os.path.exists(discussion_path) else "(no discussion.md yet)"
  write_text(os.path.join(out, "results.md"), text.replace("@@DISCUSSION@@", discussion))
  write_json(os.path.join(out, "results.json"), results)
  plot(results, os.path.join(out, "imbalance.png"))
  print(text.replace("@@DISCUSSION@@", ""))


if __name__ == "__main__":
  main()
