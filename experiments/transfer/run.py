"""Does transfer learning help? The digits CNN pretrained on digits 0-4, fine-tuned on few examples of
5-9 with its conv layers frozen and a fresh head, against the same model trained from scratch on the
same examples. Writes report.md, report.json and accuracy_vs_examples.png into --workdir.

  python experiments/transfer/run.py --workdir=runs/transfer            # ~3 min on 2 CPU cores
  python experiments/transfer/run.py --workdir=runs/transfer --sizes=20,50 --seeds=2
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import jaxflow  # noqa: E402
from jaxflow.workdir import write_json, write_text  # noqa: E402


def config(name: str, *overrides: str):
  return jaxflow.load_config(os.path.join(ROOT, "configs", f"{name}.py"), list(overrides))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--sizes", default="20,50,200", help="training examples of digits 5-9")
  parser.add_argument("--seeds", type=int, default=3)
  args = parser.parse_args()
  sizes = [int(s) for s in args.sizes.split(",")]

  pretrain_dir = os.path.join(args.workdir, "pretrain")
  pretrain = jaxflow.train(config("digits_cnn_pretrain"), pretrain_dir, quiet=True)
  results = {"pretrain_accuracy_0_4": pretrain["final"]["eval"]["accuracy"], "runs": []}
  for size in sizes:
    batch = min(25, size)
    for seed in range(args.seeds):
      for method, name, extra in (
        ("fine-tune (conv frozen)", "digits_cnn_finetune", [f"init_from={pretrain_dir}"]),
        ("scratch", "digits_cnn_scratch", []),
      ):
        workdir = os.path.join(args.workdir, f"{name}_n{size}_s{seed}")
        overrides = [f"data.train_examples={size}", f"train.batch_size={batch}", f"seed={seed}", *extra]
        summary = jaxflow.train(config(name, *overrides), workdir, quiet=True)
        results["runs"].append(
          {"method": method, "examples": size, "seed": seed, "accuracy": summary["final"]["eval"]["accuracy"]}
        )
        print(f"{method:24s} n={size:4d} seed={seed}: {summary['final']['eval']['accuracy']:.4f}", flush=True)

  lines = [
    "# Transfer learning on digits: pretrained on 0-4, evaluated on the 5-9 test examples",
    "",
    f"Pretrained CNN, test accuracy on digits 0-4: {results['pretrain_accuracy_0_4']:.4f}. "
    f"Each cell: median test accuracy on 5-9 over {args.seeds} seeds (min-max).",
    "",
    "| training examples of 5-9 | fine-tune (conv frozen, new head) | scratch | difference |",
    "|---|---|---|---|",
  ]
  medians = {}
  for size in sizes:
    cells = []
    for method in ("fine-tune (conv frozen)", "scratch"):
      accs = [r["accuracy"] for r in results["runs"] if r["examples"] == size and r["method"] == method]
      medians[(method, size)] = statistics.median(accs)
      cells.append(f"{statistics.median(accs):.4f} ({min(accs):.4f}-{max(accs):.4f})")
    diff = medians[("fine-tune (conv frozen)", size)] - medians[("scratch", size)]
    lines.append(f"| {size} | {cells[0]} | {cells[1]} | {diff:+.4f} |")
  report = "\n".join(lines) + "\n"
  write_text(os.path.join(args.workdir, "report.md"), report)
  write_json(os.path.join(args.workdir, "report.json"), results)

  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(6, 4))
  for method, marker in (("fine-tune (conv frozen)", "o"), ("scratch", "s")):
    runs = [r for r in results["runs"] if r["method"] == method]
    ax.scatter([r["examples"] for r in runs], [r["accuracy"] for r in runs], marker=marker, alpha=0.4)
    ax.plot(sizes, [medians[(method, s)] for s in sizes], marker=marker, label=f"{method} (median)")
  ax.set_xscale("log")
  ax.set_xticks(sizes, [str(s) for s in sizes])
  ax.minorticks_off()
  ax.set_xlabel("training examples of digits 5-9")
  ax.set_ylabel("test accuracy on 5-9")
  ax.set_title("Digits CNN: transfer from 0-4 vs from scratch")
  ax.grid(alpha=0.3)
  ax.legend()
  fig.tight_layout()
  fig.savefig(os.path.join(args.workdir, "accuracy_vs_examples.png"), dpi=120)
  print(report)


if __name__ == "__main__":
  main()
