"""Does augmentation help when data is scarce? The digits CNN trained on the first 100, 300 or all 1437
training examples, with on-device augmentation off, on (small rotations, shifts, zooms, pixel noise), or
with a left-right flip (wrong for digits: a mirrored 2, 3, 4, 7 or 9 is no digit, or another one); 3 seeds
each, test accuracy on the full test split. Writes results.md, results.json, accuracy_vs_train_size.png
and augmented_examples.png into --out (default: results/ beside this file).

  python experiments/augmentation/run.py                    # ~2 min on 2 CPU cores
  python experiments/augmentation/run.py --sizes=100 --seeds=1 --out=/tmp/augmentation_check

Every run goes through `jaxflow.train(jaxflow.load_config("configs/digits_cnn.py", overrides), workdir)`.
Every run gets the same budget of ~600 optimizer steps (the default config's 20 epochs of the full set are
440 steps; 20 epochs of 100 examples would be 60): batch 32 below 1000 examples, 64 above, and
epochs = round(600 / steps per epoch). Workdirs go to a temporary folder (deleted at the end) unless
--workdir is given (experiments/augmentation/runs is git-ignored).
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

CONFIG = os.path.join(ROOT, "configs", "digits_cnn.py")
STEP_BUDGET = 600
AUGMENT = (
  "rotate(degrees=12, p=0.5)",
  "translate(max_dx=1, max_dy=1, p=0.5)",
  "zoom(0.9, 1.1, p=0.5)",
  "noise(std=0.03, p=0.5)",
)
HFLIP = ("hflip(p=0.5)",)
ARMS = (("off", ()), ("on", AUGMENT), ("hflip (wrong for digits)", HFLIP))


def tuple_override(ops: tuple[str, ...]) -> str:
  return "data.augment=(" + ", ".join(f'"{op}"' for op in ops) + ("," if len(ops) == 1 else "") + ")"


def schedule(size: int) -> tuple[int, int]:
  """(batch size, epochs) giving ~STEP_BUDGET steps on `size` examples (the last partial batch is dropped)."""
  batch = 32 if size < 1000 else 64
  return batch, max(1, round(STEP_BUDGET / (size // batch)))


def eval_curve(workdir: str) -> list[tuple[int, float]]:
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    records = [json.loads(line) for line in f]
  return [(r["epoch"], r["accuracy"]) for r in records if r["split"] == "eval"]


def run_one(size: int, arm: str, ops: tuple[str, ...], seed: int, workdir: str) -> dict:
  batch, epochs = schedule(size)
  overrides = [f"data.train_examples={size}", f"train.batch_size={batch}", f"train.epochs={epochs}", f"seed={seed}"]
  if ops:
    overrides.append(tuple_override(ops))
  summary = jaxflow.train(jaxflow.load_config(CONFIG, overrides), workdir, quiet=True)
  curve = eval_curve(workdir)
  return {
    "examples": size,
    "arm": arm,
    "seed": seed,
    "overrides": overrides,
    "accuracy": summary["final"]["eval"]["accuracy"],
    "eval_loss": summary["final"]["eval"]["loss"],
    "best_accuracy": summary["best"]["value"],
    "best_epoch": summary["best"]["epoch"],
    "train_accuracy": summary["final"]["train"]["accuracy"],
    "train_loss": summary["final"]["train"]["loss"],
    "steps": summary["steps"],
    "epochs": epochs,
    "batch_size": batch,
    "eval_accuracy_by_epoch": curve,
    "wall_seconds": summary["wall_seconds"],
  }


def at_fraction(curve: list[tuple[int, float]], fraction: float) -> float:
  epochs = curve[-1][0]
  target = max(1, round(fraction * epochs))
  return min(curve, key=lambda point: abs(point[0] - target))[1]


def mean_range(values: list[float]) -> str:
  return f"{statistics.mean(values):.4f} ({min(values):.3f}-{max(values):.3f})"


def report(results: dict) -> str:
  runs, sizes, seeds = results["runs"], results["sizes"], results["seeds"]
  arms = [arm for arm, _ in ARMS]

  def cell(size, arm):
    return [r for r in runs if r["examples"] == size and r["arm"] == arm]

  def paired(size, arm):
    off = {r["seed"]: r["accuracy"] for r in cell(size, "off")}
    return [r["accuracy"] - off[r["seed"]] for r in sorted(cell(size, arm), key=lambda r: r["seed"])]

  lines = [
    "# Augmentation on digits: does it help when data is scarce?",
    "",
    "**Question.** The digits CNN (configs/digits_cnn.py) trained on the first N training examples "
    f"(N = {', '.join(map(str, sizes))}; the test split is always the full 360): does on-device augmentation raise "
    "test accuracy, and more so when N is small?",
    "",
    "**Command.** `python experiments/augmentation/run.py`; each run is "
    "`jaxflow.train(jaxflow.load_config('configs/digits_cnn.py', ['data.train_examples=N', 'train.batch_size=B', "
    "'train.epochs=E', 'seed=S', AUGMENT]), workdir, quiet=True)` with",
    "",
    f"- on: `{tuple_override(AUGMENT)}`",
    f"- hflip: `{tuple_override(HFLIP)}` (a control: the wrong augmentation for digits)",
    "",
    "| N | batch | epochs | steps |",
    "|---|---|---|---|",
  ]
  for size in sizes:
    batch, epochs = schedule(size)
    lines.append(f"| {size} | {batch} | {epochs} | {epochs * (size // batch)} |")
  lines += [
    "",
    f"**Result.** Final-epoch test accuracy, mean (min-max) over {seeds} seeds, and the paired difference from "
    "`off` at the same seed (same initial parameters, same batch order; only the `augment` stream is added).",
    "",
    "| N | " + " | ".join(arms) + " | on − off, per seed | hflip − off, per seed |",
    "|---|" + "---|" * len(arms) + "---|---|",
  ]
  for size in sizes:
    cells = [mean_range([r["accuracy"] for r in cell(size, arm)]) for arm in arms]
    diffs = [", ".join(f"{d:+.3f}" for d in paired(size, arm)) for arm in arms[1:]]
    lines.append(f"| {size} | " + " | ".join(cells) + " | " + " | ".join(diffs) + " |")
  lines += [
    "",
    "**Is it trained long enough?** Mean test accuracy at 25 / 50 / 75 / 100% of the epochs, and the training "
    "accuracy of the last logged steps (on augmented images when augmentation is on):",
    "",
    "| N | arm | 25% | 50% | 75% | 100% | final train accuracy |",
    "|---|---|---|---|---|---|---|",
  ]
  for size in sizes:
    for arm in arms:
      rs = cell(size, arm)
      points = [
        statistics.mean(at_fraction(r["eval_accuracy_by_epoch"], f) for r in rs) for f in (0.25, 0.5, 0.75, 1.0)
      ]
      train = statistics.mean(r["train_accuracy"] for r in rs)
      lines.append(f"| {size} | {arm} | " + " | ".join(f"{p:.4f}" for p in points) + f" | {train:.4f} |")
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


def plot_accuracy(results: dict, path: str) -> None:
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  sizes = results["sizes"]
  fig, ax = plt.subplots(figsize=(6.4, 4.4))
  styles = {"off": ("C0", "o", 0.97), "on": ("C1", "s", 1.0), "hflip (wrong for digits)": ("C7", "^", 1.03)}
  for arm, _ in ARMS:
    colour, marker, shift = styles[arm]
    runs = [r for r in results["runs"] if r["arm"] == arm]
    ax.scatter(
      [r["examples"] * shift for r in runs],
      [r["accuracy"] for r in runs],
      color=colour,
      marker=marker,
      alpha=0.35,
      s=18,
    )
    means = [statistics.mean(r["accuracy"] for r in runs if r["examples"] == s) for s in sizes]
    label = {"off": "augmentation off", "on": "augmentation on"}.get(arm, "hflip(p=0.5) (wrong for digits)")
    ax.plot(
      [s * shift for s in sizes],
      means,
      color=colour,
      marker=marker,
      label=f"{label} (mean)",
      ls="--" if arm.startswith("hflip") else "-",
    )
  ax.set_xscale("log")
  ax.set_xticks(sizes, [str(s) for s in sizes])
  ax.minorticks_off()
  ax.set_xlabel("training examples (first N of the digits training split)")
  ax.set_ylabel("test accuracy (360 test images)")
  ax.set_title(f"Digits CNN, ~{STEP_BUDGET} steps per run, {results['seeds']} seeds (dots)")
  ax.grid(alpha=0.3)
  ax.legend(loc="lower right")
  fig.tight_layout()
  fig.savefig(path, dpi=120)


def plot_examples(path: str, data_dir: str | None) -> None:
  """A few training images and what the configured ops make of them: a check that the ops do what they say."""
  import jax.numpy as jnp
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  from jaxflow.data import augment, loading

  split = loading.load_split("digits", "train", data_dir=data_dir)
  picks = [int(next(i for i, label in enumerate(split.labels) if label == d)) for d in (1, 2, 3, 4, 7, 9)]
  images = jnp.asarray(split.inputs[picks])
  columns = 6
  rows = [("original", images)]
  for name, ops in (("on", AUGMENT), ("hflip(p=1)", ("hflip(p=1.0)",))):  # p=1: the mirror image always
    parsed = augment.parse_augment(ops)
    for k in range(columns if name == "on" else 1):
      rows.append(
        (
          f"{name} #{k}" if name == "on" else name,
          augment.augment_batch(jax.random.key(100 + k), images, parsed, jnp.arange(len(picks))),
        )
      )
  fig, axes = plt.subplots(len(picks), len(rows), figsize=(1.1 * len(rows), 1.15 * len(picks)))
  for j, (name, batch) in enumerate(rows):
    for i in range(len(picks)):
      ax = axes[i, j]
      ax.imshow(batch[i, :, :, 0], cmap="gray_r", vmin=0, vmax=1)
      ax.set_xticks([])
      ax.set_yticks([])
      if i == 0:
        ax.set_title(name, fontsize=7)
      if j == 0:
        ax.set_ylabel(f"label {split.labels[picks[i]]}", fontsize=7)
  fig.suptitle("Training images and augmented draws ('on' = rotate, translate, zoom, noise, each p=0.5)", fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
  parser.add_argument("--workdir", default=None, help="keep the runs here (default: a temporary folder, deleted)")
  parser.add_argument("--sizes", default="100,300,1437")
  parser.add_argument("--seeds", type=int, default=3)
  parser.add_argument(
    "--replot", action="store_true", help="rewrite results.md and the plots from --out/results.json, train nothing"
  )
  args = parser.parse_args()
  if args.replot:
    with open(os.path.join(args.out, "results.json")) as f:
      write_outputs(json.load(f), args.out)
    return

  start = time.perf_counter()
  root = args.workdir or tempfile.mkdtemp(prefix="jaxflow_augmentation_")
  jax.config.update("jax_compilation_cache_dir", os.path.join(root, "jax_cache"))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  sizes = [int(s) for s in args.sizes.split(",")]
  results = {
    "config": "configs/digits_cnn.py",
    "sizes": sizes,
    "seeds": args.seeds,
    "tree": describe_commit(git_state(root=ROOT)),
    "augment": list(AUGMENT),
    "runs": [],
  }
  try:
    for size in sizes:
      for arm, ops in ARMS:
        for seed in range(args.seeds):
          slug = "".join(ch if ch.isalnum() else "_" for ch in arm)[:12]
          r = run_one(size, arm, ops, seed, os.path.join(root, f"n{size}_{slug}_s{seed}"))
          results["runs"].append(r)
          print(
            f"n={size:5d} {arm:26s} seed={seed}: test {r['accuracy']:.4f} (best {r['best_accuracy']:.4f} "
            f"@ epoch {r['best_epoch']}/{r['epochs']}), {r['wall_seconds']:.1f} s",
            flush=True,
          )
    results["runtime_seconds"] = time.perf_counter() - start
    results["device"] = f"{jax.devices()[0].platform}, {os.cpu_count()} CPU cores"
    write_outputs(results, args.out)  # inside: the example plot runs jax ops, and the cache dir must still exist
  finally:
    if args.workdir is None:
      shutil.rmtree(root, ignore_errors=True)


def write_outputs(results: dict, out: str) -> None:
  """results.json, the plots, and results.md: the generated tables plus discussion.md (written by hand
  for the recorded numbers; a rerun with other numbers keeps the tables right but needs it reread)."""
  os.makedirs(out, exist_ok=True)
  text = report(results)
  discussion_path = os.path.join(out, "discussion.md")
  discussion = open(discussion_path).read().strip() if os.path.exists(discussion_path) else "(no discussion.md yet)"
  write_text(os.path.join(out, "results.md"), text.replace("@@DISCUSSION@@", discussion))
  write_json(os.path.join(out, "results.json"), results)
  plot_accuracy(results, os.path.join(out, "accuracy_vs_train_size.png"))
  plot_examples(os.path.join(out, "augmented_examples.png"), None)
  print(text.replace("@@DISCUSSION@@", ""))


if __name__ == "__main__":
  main()
