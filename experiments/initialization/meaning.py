"""The initialization report's tables and words, written from the numbers (a rerun says what its numbers show).

The claims tested (the workflow's): a constant init never breaks the symmetry (the units stay identical); too
small a range makes activations and gradients vanish with depth, too large makes them explode (relu) or saturate
(sigmoid); Xavier/Glorot suits sigmoid-like units and He suits relu, and the scheme shows in the final accuracy.
"""

from __future__ import annotations

from experiments.common import report


def _m(s: dict, name: str, key: str) -> float | None:
  v = s[name].get(key)
  return None if v is None else v["mean"]


def _f(v: float | None, digits: int = 3) -> str:
  return "-" if v is None else f"{v:.{digits}f}"


def _said(d: dict | None, digits: int = 3) -> str:
  if d is None or d["mean"] is None:
    return "not measured"
  ci = f" [{d['ci95'][0]:+.{digits}f}, {d['ci95'][1]:+.{digits}f}]" if d["ci95"] else ""
  return f"{d['mean']:+.{digits}f}{ci} ({'tie' if d['verdict'] == 'tie' else 'resolved'})"


def _diff(diffs: list[dict], a: str, b: str, metric: str) -> dict | None:
  return next((d for d in diffs if d["a"] == a and d["b"] == b and d["comparison"] == metric), None)


def _units(s: dict, name: str) -> str:
  v = _m(s, name, "min_distinct_units")
  return "-" if v is None else f"{v:.0f}"


def answer(s: dict, model: str) -> str:
  parts = []
  for activation in dict.fromkeys(n.split(" / ")[0] for n in s):
    names = [n for n in s if n.startswith(activation + " / ")]
    accs = ", ".join(f"{n.split(' / ')[1]} {_f(_m(s, n, 'accuracy'))}" for n in names)
    parts.append(f"{activation}: {accs}")
  constant = [n for n in s if n.endswith("/ constant")]
  units = "; ".join(f"{n}: {_units(s, n)} distinct unit(s) per layer after training" for n in constant)
  grads = ", ".join(f"{n} {_m(s, n, 'init_grad_ratio'):+.1f}" for n in s if _m(s, n, "init_grad_ratio") is not None)
  return (
    f"Final test accuracy on the {model} ({'; '.join(parts)}); {units or 'constant not run'}; log10 gradient "
    f"norm first/last hidden layer at init: {grads}."
  )


def setup(args, common: tuple, quick: tuple, at_init: tuple, schemes: dict, mode: str) -> list[str]:
  shown = quick if args.quick else common
  return [
    "Data: the 8x8 digits scikit-learn ships (1437 train / 360 test); accuracy resolution 1/360 = 0.0028.",
    "Every arm: `configs/digits_mlp.py` with " + " ".join(f"`{o}`" for o in shown) + ", `model.activation` "
    "(relu or sigmoid) and `model.kernel_init` (the scheme, every layer including the linear head); Adam, lr 3e-3, "
    "cosine schedule, 20 warmup steps, batch 128"
    + (" (quick: the shared quick overrides)" if args.quick else "")
    + ".",
    "Schemes: " + "; ".join(f"{k} = `{v}`" for k, v in schemes.items()) + ". For a 64-unit layer He's std is "
    "sqrt(2/64) = 0.177 and Xavier's sqrt(2/(64+64)) = 0.125 (0.177 / 0.119 for the 64 -> 10 head); so 0.01 is "
    "~15x too small and 1.0 ~6-8x too large for relu.",
    "At init: the same arm with " + " ".join(f"`{o}`" for o in at_init) + ": its epoch-1 layer record is taken "
    "after one epoch of steps at lr 1e-12 (each weight moves by ~1e-11), i.e. on the initial network; seed i "
    "of the at-init arm and of the trained arm draw "
    "the same initial weights (paired).",
    f"Each arm: `jaxflow.seeds(config, workdir, seeds={args.seeds}, vary='all', mode='{mode}')`.",
    "Per-layer statistics: jaxflow's `train.layer_stats_every=1` records (metrics.jsonl, split `layers`): "
    "activation std of each hidden layer's output and each layer's parameter-gradient norm, on a fixed probe "
    "batch (the first 128 training images), eval mode. Distinct units: from each trained seed's last checkpoint "
    "(read with orbax), the columns of [kernel; bias] of a hidden layer that differ by more than 1e-5 x the "
    "layer's largest weight.",
  ]


def _row(s: dict, name: str, keys: tuple, digits: int) -> list[str]:
  return [name, *(report.cell(s[name][k], 1 if "units" in k else digits) for k in keys)]


def _layers(s: dict, which: str, stat: str, title: str) -> report.Table:
  names = [n for n in s if s[n][which].get(stat)]
  layer_names = list(s[names[0]][which][stat]) if names else []
  rows = [[n, *(f"{s[n][which][stat][layer]:.3g}" for layer in layer_names)] for n in names]
  return report.Table(title, ["arm", *layer_names], rows, "Mean over seeds, on jaxflow's fixed probe batch.")


def tables(s: dict, width: int) -> list[report.Table]:
  acc_keys = ("accuracy", "best_accuracy", "train_accuracy", "init_accuracy", "min_distinct_units")
  header = [
    "arm",
    "final test accuracy",
    "best-epoch test accuracy",
    "final train accuracy",
    "test accuracy at init",
    f"distinct units after training (fewest over hidden layers, of {width})",
  ]
  flow_keys = (
    "init_grad_ratio",
    "trained_grad_ratio",
    "init_act_std_ratio",
    "init_act_std_last",
    "trained_act_std_last",
  )
  flow = [
    "arm",
    "log10 grad norm first/last hidden, init",
    "same, trained",
    "log10 act std last/first hidden, init",
    "act std last hidden, init",
    "same, trained",
  ]
  units_rows = [[n, *(f"{v:.1f}" for v in s[n]["distinct_units"].values())] for n in s if s[n]["distinct_units"]]
  units_header = ["arm", *next((list(s[n]["distinct_units"]) for n in s if s[n]["distinct_units"]), [])]
  return [
    report.Table(
      "Accuracy and distinct units", header, [_row(s, n, acc_keys, 3) for n in s], "Mean [95% t-CI] over seeds."
    ),
    report.Table(
      "Vanishing and exploding, in one number each",
      flow,
      [_row(s, n, flow_keys, 2) for n in s],
      "Mean [95% t-CI] over seeds. Gradient ratio < 0: the gradient shrinks towards the input (vanishing); "
      "> 0: it grows (exploding backwards). Activation-std ratio < 0: the signal fades with depth.",
    ),
    _layers(s, "layers_init", "act_std", "Activation std per hidden layer at initialization"),
    _layers(s, "layers_init", "grad_norm", "Parameter-gradient norm per layer at initialization"),
    _layers(s, "layers_trained", "act_std", "Activation std per hidden layer after training"),
    _layers(s, "layers_trained", "grad_norm", "Parameter-gradient norm per layer after training"),
    report.Table(
      "Distinct units per hidden layer after training",
      units_header,
      units_rows,
      "Mean over seeds: how many different functions a layer's units compute.",
    ),
  ]


def _silent_hidden(s: dict, name: str) -> str:
  """A constant head makes every logit equal: the softmax errors then sum to zero, and so does the gradient that
  reaches each hidden unit (c x the sum of the errors); only the head learns until its columns differ."""
  grads = s[name]["layers_init"].get("grad_norm", {})
  hidden = [v for layer, v in grads.items() if layer != "head" and v is not None]
  if not hidden or grads.get("head") is None:
    return ""
  return (
    f" At init its hidden layers' gradient norms are at most {max(hidden):.1e} against the head's "
    f"{grads['head']:.2g}: with a constant head every logit is equal, the softmax errors sum to zero, and so does "
    "the gradient each hidden unit receives (the head's constant times that sum); nothing reaches the hidden "
    "layers until the head's columns have drifted apart, and then every unit of a layer receives the same."
  )


def paragraphs(s: dict, diffs: list[dict], reference: dict) -> list[str]:
  out = []
  for name in (n for n in s if n.endswith("/ constant")):
    out.append(
      f"**Constant ({name}): the symmetry is never broken.** After training every hidden layer holds "
      f"{_units(s, name)} distinct unit(s) (fewest over layers, mean over seeds): every unit of a layer receives the "
      "same input and the same gradient, so no step can make two of them differ; the network is a chain of "
      f"one-unit layers whatever its width. Final test accuracy {_f(_m(s, name, 'accuracy'))} (train "
      f"{_f(_m(s, name, 'train_accuracy'))}). Dropout, which this study turns off, would break the tie by itself."
      + _silent_hidden(s, name)
    )
  rows = []
  for name in s:
    rows.append(
      f"{name}: gradient ratio {_f(_m(s, name, 'init_grad_ratio'), 2)}, last hidden layer's act std "
      f"{_f(_m(s, name, 'init_act_std_last'), 4)}"
    )
  out.append(
    "**At initialization: vanishing and exploding made visible** (log10 of the first hidden layer's gradient norm "
    "over the last one's; activation std of the last hidden layer): " + "; ".join(rows) + ". The per-layer plots "
    "show it layer by layer: with relu, too small a range shrinks the signal by about std x sqrt(64/2) per layer "
    "and too large a range multiplies it; He keeps it level. With sigmoid every layer's output sits near 0.5 "
    "whatever the range below it, and the gradient is divided by at least 4 per layer on its way back."
  )
  versus = []
  for d in diffs:
    if d["comparison"] == "accuracy":
      versus.append(f"{d['a']} - {d['b']}: {_said(d)}")
  out.append(
    "**Final accuracy, paired.** " + "; ".join(versus) + ". Adam normalizes each parameter's step by its own "
    "gradient scale, so a network whose gradients only vanish can still train, while one whose units are identical "
    "or whose outputs saturate from the start may not move at all: the accuracy table says which happened here."
  )
  return out


def caveats(args) -> list[str]:
  out = [
    "Adam, not SGD: it rescales vanishing or exploding gradients per parameter, which hides much of the damage a "
    "bad scale does to plain SGD; the per-layer gradient norms are the direct measure, the accuracies the "
    "consequence under Adam.",
    "Biases are zero in every arm, and the head shares the scheme; a constant kernel with random biases, or a "
    "random head, would differ. The constant value (0.02) and the 'too small' / 'too large' stds are single "
    "choices: other values move the numbers, not the direction.",
    "The statistics are on one fixed probe batch in eval mode, once per epoch; 'at init' is the epoch-1 record of "
    "the same run at lr 1e-12 (11 Adam steps of ~1e-12 per weight), not a record taken before the first step: "
    "jaxflow logs layer statistics only at the end of an epoch.",
    "Distinct units are counted with a relative tolerance of 1e-5: a layer whose units differ by less would "
    "count as one unit.",
    "8 hidden layers of 64 units and 20 epochs on 8x8 digits; deeper and wider networks make the per-layer "
    "factors compound further.",
  ]
  if args.quick:
    out.insert(0, "Quick run: a 16-unit MLP (one hidden layer), one epoch of three steps, two seeds: structure only.")
  return out
