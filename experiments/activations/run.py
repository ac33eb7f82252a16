"""Activations: step (straight-through), sigmoid, tanh, relu and gelu in the same MLP, with the same init scheme
and budget; learning curves, final accuracy, and per-layer gradient norms showing where each saturates.

  python experiments/activations/run.py            # full run: ~2-4 min on 2 shared CPU cores
  python experiments/activations/run.py --quick    # seconds; the same outputs' structure

Every arm is configs/digits_mlp.py with four hidden layers of 64 units (deep enough for a gradient to fade on its
way to the input), no dropout, lecun_normal kernels and zero biases (the config's default scheme, for every
activation), Adam at the config's lr and cosine schedule for its 330 steps, and `train.layer_stats_every=1`:
after each epoch jaxflow logs each layer's activation mean/std and gradient norm on a fixed training batch
(metrics.jsonl, split "layers"). Only `model.activation` differs between arms. Each arm runs
`jaxflow.seeds(config, workdir, seeds=5, vary="all", mode="vmap")`; seed i of every arm draws the same initial
weights and data order (paired).
"""

from __future__ import annotations

import math
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from experiments import harness_extras  # noqa: E402
from experiments.activations import figures, layers, meaning  # noqa: E402
from experiments.common import report, stats, study  # noqa: E402

QUESTION = (
  "step (straight-through), sigmoid, tanh, relu, gelu: same init scheme and budget; learning curves, final "
  "accuracy, and per-layer gradient norms showing where each saturates."
)
CONFIG = "configs/digits_mlp.py"
ACTIVATIONS = ("step", "sigmoid", "tanh", "relu", "gelu")
QUICK_ACTIVATIONS = ("step", "relu")
REFERENCE = "relu"
EARLY_EPOCH = 3  # "how fast": test accuracy after this many epochs (33 steps)
DEPTH, WIDTH = 4, 64
COMMON = (
  f"model.widths=({','.join([str(WIDTH)] * DEPTH)})",
  "model.dropout_rate=0.0",
  "model.kernel_init=lecun_normal",
  "model.bias_init=zeros",
  "train.layer_stats_every=1",
)
QUICK = (*harness_extras.QUICK_MLP, f"data.train_examples={harness_extras.QUICK_TRAIN}", "train.layer_stats_every=1")
MODE = "vmap"  # MLPs: vmap over seeds is the faster mode on CPU (shared/PITFALLS.md); explicit, never "auto"
QUICK_MODE = "sequential"  # the other quick studies' mode: their compiled programs repeat (the cache serves them)


def extract(summary: dict, workdir: str) -> dict:
  """Per seed: final/best/train accuracy, the learning curve, and every layer's statistics after each epoch."""
  row = harness_extras.final_best_and_train(summary, workdir)
  curve = layers.eval_curve(workdir)
  series = layers.layer_series(workdir)
  hidden = layers.hidden_layers(series)
  row["curve"] = [round(a, 4) for a in curve]
  row["early_accuracy"] = curve[min(EARLY_EPOCH, len(curve)) - 1] if curve else None
  row["layers"] = series
  grads = series["grad_norm"]
  first, last = hidden[0], hidden[-1]
  for when, i in (("start", 0), ("end", -1)):
    a, b = grads[first][i], grads[last][i]
    row[f"grad_ratio_{when}"] = math.log10(a / b) if a and b else None  # log10(first / last hidden layer)
  return row


def run_arms(session: study.Session, quick: bool) -> dict[str, study.ArmResult]:
  names = QUICK_ACTIVATIONS if quick else ACTIVATIONS
  shared = QUICK if quick else COMMON
  return {
    a: session.run(
      study.Arm(a, CONFIG, (*shared, f"model.activation={a}"), mode=QUICK_MODE if quick else MODE), extract
    )
    for a in names
  }


def summarize(results: dict[str, study.ArmResult]) -> dict:
  """Per arm: mean/CI of the scalars; per layer and statistic, the mean over seeds after epoch 1 and at the end."""
  out = {}
  for name, r in results.items():
    s = {k: stats.mean_ci(r.values(k)) for k in METRICS}
    rows = [row for row in r.per_seed if row]
    curves = [row["curve"] for row in rows]
    s["curve"] = [stats.mean_ci([c[e] for c in curves if len(c) > e]) for e in range(max(map(len, curves)))]
    s["layers"] = {}
    for stat in layers.STATS:
      s["layers"][stat] = {}
      for layer in rows[0]["layers"][stat]:
        for when, i in (("start", 0), ("end", -1)):
          values = [row["layers"][stat][layer][i] for row in rows]
          s["layers"][stat].setdefault(layer, {})[when] = stats.mean_ci(values)["mean"]
    out[name] = s
  return out


METRICS = ("accuracy", "best_accuracy", "train_accuracy", "early_accuracy", "grad_ratio_start", "grad_ratio_end")


def _abs(values: list) -> list:
  return [None if v is None else abs(v) for v in values]


def differences(results: dict[str, study.ArmResult]) -> list[dict]:
  """Each activation - relu, seed by seed: final and early accuracy, and the first/last gradient ratio."""
  ref = results[REFERENCE]
  resolution = ref.resolution
  rows = []
  for name, r in results.items():
    if name == REFERENCE:
      continue
    for metric in ("accuracy", "early_accuracy"):
      rows.append(stats.compare(metric, name, r.values(metric), REFERENCE, ref.values(metric), resolution=resolution))
    for metric in ("grad_ratio_start", "grad_ratio_end"):  # |log10 ratio|: 0 is a gradient that neither fades nor grows
      a, b = (_abs(x.values(metric)) for x in (r, ref))
      rows.append(stats.compare(f"|{metric}|", name, a, REFERENCE, b, resolution=0.01, higher_is_better=False))
  return rows


def accuracy_table(s: dict) -> report.Table:
  keys = ("accuracy", "best_accuracy", "train_accuracy", "early_accuracy", "grad_ratio_start", "grad_ratio_end")
  rows = [[name, *(report.cell(v[k], 3 if "accuracy" in k else 2) for k in keys)] for name, v in s.items()]
  header = [
    "activation",
    "final test accuracy",
    "best-epoch test accuracy",
    "final train accuracy",
    f"test accuracy after epoch {EARLY_EPOCH}",
    "log10 grad norm first/last hidden, epoch 1",
    "same, final epoch",
  ]
  note = (
    "Mean [95% t-CI] over seeds. The gradient ratio compares the first hidden layer's parameter-gradient norm "
    "with the last hidden layer's: below 0 the gradient shrinks on its way to the input (vanishing), above 0 it grows."
  )
  return report.Table("Accuracy and gradient flow per activation", header, rows, note)


def layer_table(s: dict, stat: str, when: str, title: str) -> report.Table:
  names = list(s)
  layer_names = list(s[names[0]]["layers"][stat])
  rows = [[n, *(report.fmt(s[n]["layers"][stat][layer][when], 4) for layer in layer_names)] for n in names]
  return report.Table(title, ["activation", *layer_names], rows, "Mean over seeds, on jaxflow's fixed probe batch.")


def main(argv: list[str] | None = None) -> dict:
  args = study.parse_args(__file__, argv, description=__doc__.splitlines()[0])
  with study.session(args) as session:
    results = run_arms(session, args.quick)
    s = summarize(results)
    diffs = differences(results)
    plot_files = figures.draw(args.out, s)
    facts = {
      "title": "Activations: step, sigmoid, tanh, relu, gelu under one init scheme and budget",
      "question": QUESTION,
      "answer": meaning.answer(s, diffs, REFERENCE),
      "command": args.command,
      "quick": args.quick,
      "seeds": args.seeds,
      "setup": meaning.setup(args, COMMON, QUICK, QUICK_MODE if args.quick else MODE, EARLY_EPOCH),
      "arms": {name: study.arm_facts(r) for name, r in results.items()},
      "differences": diffs,
      "plots": plot_files,
      "meaning": meaning.paragraphs(s, diffs, REFERENCE),
      "caveats": meaning.caveats(args),
      "findings": s,
      "provenance": session.clock.finish(),
    }
  tables = [
    accuracy_table(s),
    layer_table(s, "grad_norm", "start", "Parameter-gradient norm per layer after epoch 1"),
    layer_table(s, "grad_norm", "end", "Parameter-gradient norm per layer after the last epoch"),
    layer_table(s, "act_mean", "end", "Activation mean per hidden layer after the last epoch"),
    layer_table(s, "act_std", "end", "Activation std per hidden layer after the last epoch"),
  ]
  note = (
    "|grad_ratio|: the size of log10(first / last hidden layer's gradient norm), lower is better (a gradient "
    "that neither fades nor grows on its way to the input); log10 units, resolution 0.01."
  )
  diff_tables = [report.difference_table(f"Each activation - {REFERENCE}, seed by seed", diffs, note=note)]
  shown = report.write(args.out, facts, tables, diff_tables)
  print(shown["answer"])
  return shown


if __name__ == "__main__":
  main()
