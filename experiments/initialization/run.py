"""Initialization, "value range and distribution": constant (symmetry never broken), too small, too large,
Xavier/Glorot and He kernels on a deep MLP (8 hidden layers) with relu and with sigmoid; per-layer activation std
and gradient norm at initialization and after training, distinct units after training, and final accuracy.

  python experiments/initialization/run.py            # full run: ~5-8 min on 2 shared CPU cores
  python experiments/initialization/run.py --quick    # seconds; the same outputs' structure

Every arm is configs/digits_mlp.py with 8 hidden layers of 64 units, no dropout (dropout would break a constant
init's symmetry by itself), zero biases, `model.kernel_init=<scheme>` for every layer (the head included) and
`train.layer_stats_every=1` (jaxflow logs each layer's activation mean/std and gradient norm on a fixed training
batch after every epoch). Each (activation, scheme) is run twice through `jaxflow.seeds(..., seeds=5,
vary="all", mode="vmap")`: trained for EPOCHS epochs, and "at init": one step at lr 1e-12, so its epoch-1 layer
record is the initial network's. Seed i of every arm draws the same streams (paired), so the at-init arm of seed
i is the trained arm's seed i before training. Distinct units are counted from each trained seed's checkpoint.
"""

from __future__ import annotations

import math
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from experiments import harness_extras  # noqa: E402
from experiments.activations import layers  # noqa: E402
from experiments.common import report, stats, study  # noqa: E402
from experiments.initialization import figures, meaning  # noqa: E402

QUESTION = (
  '"value range and distribution": constant (symmetry never broken: units stay identical), too small, too large, '
  "Xavier/Glorot, He, on a deep MLP (>= 8 layers) with relu and with sigmoid; per-layer activation std and gradient "
  "norm at initialization and after training (vanishing and exploding made visible), final accuracy."
)
CONFIG = "configs/digits_mlp.py"
DEPTH, WIDTH, EPOCHS = 8, 64, 20
QUICK_WIDTH = 16  # harness_extras.QUICK_MLP_MODEL
SCHEMES = {  # name -> kernel initializer spec (biases are zeros in every arm)
  "constant": "constant(0.02)",
  "too small": "normal(stddev=0.01)",
  "too large": "normal(stddev=1.0)",
  "xavier": "xavier_normal",
  "he": "he_normal",
}
ACTIVATIONS = ("relu", "sigmoid")
REFERENCE = {"relu": "he", "sigmoid": "xavier"}  # each activation's textbook scheme
QUICK_ARMS = (("relu", "constant"), ("relu", "he"))
COMMON = (
  f"model.widths=({','.join([str(WIDTH)] * DEPTH)})",
  "model.dropout_rate=0.0",
  "model.bias_init=zeros",
  "train.layer_stats_every=1",
)
TRAINED = (f"train.epochs={EPOCHS}",)
# At init: the trained arm at lr 1e-12, so its epoch-1 record is the initial network's. Only the lr differs: the
# init, eval and layer-statistics programs are the trained arm's (the session's compilation cache serves them).
AT_INIT = ("optim.lr=1e-12",)
QUICK = (
  *harness_extras.QUICK_MLP,
  f"data.train_examples={harness_extras.QUICK_TRAIN}",
  "model.dropout_rate=0.0",
  "train.layer_stats_every=1",
)
MODE, QUICK_MODE = "vmap", "sequential"  # explicit modes (never "auto"); quick: the other quick studies' mode


def name_of(activation: str, scheme: str) -> str:
  return f"{activation} / {scheme}"


def _ratio(a: float | None, b: float | None) -> float | None:
  return math.log10(a / b) if a and b and a > 0 and b > 0 else None


def _gradient_and_spread(series: dict, i: int) -> dict:
  """Epoch record i: log10 ratios first/last hidden layer of the gradient norm and of the activation std."""
  hidden = layers.hidden_layers(series)
  first, last = hidden[0], hidden[-1]
  g, a = series["grad_norm"], series["act_std"]
  return {
    "grad_ratio": _ratio(g[first][i], g[last][i]),
    "act_std_ratio": _ratio(a[last][i], a[first][i]),
    "act_std_last": a[last][i],
  }


def extract_trained(summary: dict, workdir: str) -> dict:
  """A trained seed: accuracies, last-epoch layer statistics, and distinct units per hidden layer."""
  row = harness_extras.final_best_and_train(summary, workdir)
  series = layers.layer_series(workdir)
  row["layers"] = {stat: {layer: v[-1] for layer, v in by.items()} for stat, by in series.items()}
  row.update(_gradient_and_spread(series, -1))
  params = layers.trained_params(workdir)
  hidden = layers.hidden_layers(series)
  row["distinct_units"] = {h: layers.distinct_units(params[h]["kernel"], params[h]["bias"]) for h in hidden}
  row["min_distinct_units"] = min(row["distinct_units"].values())
  row["final_train_loss"] = summary["final"]["train"].get("loss")
  return row


def extract_init(summary: dict, workdir: str) -> dict:
  """An at-init seed: the epoch-1 layer record (one step at lr 1e-12: the initial network) and its accuracy."""
  series = layers.layer_series(workdir)
  row = {"accuracy": summary["final"]["eval"]["accuracy"]}
  row["layers"] = {stat: {layer: v[0] for layer, v in by.items()} for stat, by in series.items()}
  row.update(_gradient_and_spread(series, 0))
  return row


def run_arms(session: study.Session, quick: bool) -> tuple[dict, dict]:
  """(trained, at_init): {arm name: ArmResult}."""
  pairs = QUICK_ARMS if quick else [(a, s) for a in ACTIVATIONS for s in SCHEMES]
  shared, mode = (QUICK, QUICK_MODE) if quick else (COMMON, MODE)
  trained, at_init = {}, {}
  for activation, scheme in pairs:
    own = (*shared, f"model.activation={activation}", f"model.kernel_init={SCHEMES[scheme]}")
    name = name_of(activation, scheme)
    own = (*own, *(() if quick else TRAINED))
    trained[name] = session.run(study.Arm(name, CONFIG, own, mode=mode), extract_trained)
    at_init[name] = session.run(study.Arm(f"{name} at init", CONFIG, (*own, *AT_INIT), mode=mode), extract_init)
  return trained, at_init


SCALARS = ("accuracy", "best_accuracy", "train_accuracy", "final_train_loss", "min_distinct_units")
RATIOS = ("grad_ratio", "act_std_ratio", "act_std_last")


def _layer_means(result: study.ArmResult) -> dict:
  rows = [row for row in result.per_seed if row]
  if not rows:
    return {}
  return {
    stat: {layer: stats.mean_ci([r["layers"][stat].get(layer) for r in rows])["mean"] for layer in by}
    for stat, by in rows[0]["layers"].items()
  }


def summarize(trained: dict, at_init: dict) -> dict:
  out = {}
  for name, r in trained.items():
    i = at_init[name]
    s = {k: stats.mean_ci(r.values(k)) for k in SCALARS}
    s["init_accuracy"] = stats.mean_ci(i.values("accuracy"))
    s.update({f"init_{k}": stats.mean_ci(i.values(k)) for k in RATIOS})
    s.update({f"trained_{k}": stats.mean_ci(r.values(k)) for k in RATIOS})
    s["layers_init"], s["layers_trained"] = _layer_means(i), _layer_means(r)
    units = [row["distinct_units"] for row in r.per_seed if row]
    s["distinct_units"] = {h: stats.mean_ci([u[h] for u in units])["mean"] for h in units[0]} if units else {}
    out[name] = s
  return out


def _abs(values: list) -> list:
  return [None if v is None else abs(v) for v in values]


def differences(trained: dict, at_init: dict) -> list[dict]:
  """Each scheme - the activation's reference scheme (He for relu, Xavier for sigmoid), seed by seed: final
  accuracy and the gradient ratio at init; relu - sigmoid under the same scheme (same initial draws)."""
  rows = []
  resolution = next(iter(trained.values())).resolution
  for name, r in trained.items():
    activation, scheme = name.split(" / ")
    ref = name_of(activation, REFERENCE[activation])
    if scheme != REFERENCE[activation] and ref in trained:
      rows.append(
        stats.compare(
          "accuracy", name, r.values("accuracy"), ref, trained[ref].values("accuracy"), resolution=resolution
        )
      )
      rows.append(
        stats.compare(
          "|grad_ratio| at init (log10)",
          name,
          _abs(at_init[name].values("grad_ratio")),
          ref,
          _abs(at_init[ref].values("grad_ratio")),
          resolution=0.01,
          higher_is_better=False,  # 0: the gradient reaches the input at the size it has at the top
        )
      )
    other = name_of("sigmoid", scheme)
    if activation == "relu" and other in trained:
      rows.append(
        stats.compare(
          "accuracy", name, r.values("accuracy"), other, trained[other].values("accuracy"), resolution=resolution
        )
      )
  return rows


def main(argv: list[str] | None = None) -> dict:
  args = study.parse_args(__file__, argv, description=__doc__.splitlines()[0])
  with study.session(args) as session:
    trained, at_init = run_arms(session, args.quick)
    s = summarize(trained, at_init)
    diffs = differences(trained, at_init)
    plot_files = figures.draw(args.out, s)
    arms = {name: study.arm_facts(r) for name, r in trained.items()}
    arms.update({f"{name} at init": study.arm_facts(r) for name, r in at_init.items()})
    facts = {
      "title": "Initialization: value range and distribution on a deep MLP",
      "question": QUESTION,
      "answer": meaning.answer(s, "16-unit quick MLP" if args.quick else f"{DEPTH}x{WIDTH} MLP"),
      "command": args.command,
      "quick": args.quick,
      "seeds": args.seeds,
      "setup": meaning.setup(args, (*COMMON, *TRAINED), QUICK, AT_INIT, SCHEMES, QUICK_MODE if args.quick else MODE),
      "arms": arms,
      "differences": diffs,
      "plots": plot_files,
      "meaning": meaning.paragraphs(s, diffs, REFERENCE),
      "caveats": meaning.caveats(args),
      "findings": s,
      "provenance": session.clock.finish(),
    }
  tables = meaning.tables(s, QUICK_WIDTH if args.quick else WIDTH)
  note = (
    "|grad_ratio|: the size of log10(first / last hidden layer's gradient norm) at init, lower is better (a "
    "gradient that neither fades nor grows on its way to the input); log10 units, resolution 0.01."
  )
  diff_tables = [report.difference_table("Each scheme - the activation's reference; relu - sigmoid", diffs, note=note)]
  shown = report.write(args.out, facts, tables, diff_tables)
  print(shown["answer"])
  return shown


if __name__ == "__main__":
  main()
