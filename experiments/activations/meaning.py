"""The activations report's words, written from the numbers (a rerun with other numbers says what those show).

The claims tested: the workflow lists step (straight-through), sigmoid, tanh, relu and gelu as if the choice
mattered, with saturation (sigmoid/tanh) and the step's zero derivative as the usual reasons it would; here each
is trained under one init scheme and budget, and the per-layer gradient norms say where the gradient fades.
"""

from __future__ import annotations


def _m(s: dict, name: str, key: str) -> float | None:
  return s[name][key]["mean"]


def _diff(diffs: list[dict], a: str, metric: str) -> dict | None:
  return next((d for d in diffs if d["a"] == a and d["comparison"] == metric), None)


def _said(d: dict | None, digits: int = 3) -> str:
  if d is None or d["mean"] is None:
    return "not measured"
  ci = f" [{d['ci95'][0]:+.{digits}f}, {d['ci95'][1]:+.{digits}f}]" if d["ci95"] else ""
  return f"{d['mean']:+.{digits}f}{ci} ({'tie' if d['verdict'] == 'tie' else 'resolved'})"


def _ranked(s: dict, key: str) -> list[str]:
  return sorted((n for n in s if _m(s, n, key) is not None), key=lambda n: -_m(s, n, key))


def answer(s: dict, diffs: list[dict], ref: str) -> str:
  order = _ranked(s, "accuracy")
  accs = ", ".join(f"{n} {_m(s, n, 'accuracy'):.3f}" for n in order)
  versus = []
  for n in order:
    d = _diff(diffs, n, "accuracy")
    if d is not None:
      versus.append(f"{n} {'ties' if d['verdict'] == 'tie' else ('beats' if d['mean'] > 0 else 'loses to')} {ref}")
  ratios = ", ".join(f"{n} {_m(s, n, 'grad_ratio_start'):+.2f}" for n in s if _m(s, n, "grad_ratio_start") is not None)
  return (
    f"Final test accuracy: {accs} ({'; '.join(versus)}, paired 95% CI); log10 of the first hidden layer's gradient "
    f"norm over the last one's after epoch 1 (below 0: fading towards the input): {ratios}."
  )


def setup(args, common: tuple, quick: tuple, mode: str, early_epoch: int) -> list[str]:
  shown = quick if args.quick else common
  return [
    "Data: the 8x8 digits scikit-learn ships (1437 train / 360 test); accuracy resolution 1/360 = 0.0028.",
    "Every arm: `configs/digits_mlp.py` with " + report_overrides(shown) + " and `model.activation=<arm>`; "
    "Adam, lr 3e-3, cosine schedule, 20 warmup steps, batch 128, 30 epochs (330 steps)"
    + (" (quick: the shared quick overrides instead)" if args.quick else "")
    + ". The head is linear in every arm; only the hidden layers' activation differs.",
    "`step` is jaxflow's straight-through step: Heaviside forward (0/1), identity gradient backward "
    "(jaxflow/models/activations.py), so its gradient norms are the identity's, not the step's zero derivative.",
    f"Each arm: `jaxflow.seeds(config, workdir, seeds={args.seeds}, vary='all', mode='{mode}')`; seed i of every "
    "arm draws the same initial weights (same shapes) and data order, so differences are paired seed by seed.",
    "Per-layer statistics: jaxflow's `train.layer_stats_every=1` records (metrics.jsonl, split `layers`) after "
    "every epoch, on a fixed probe batch (the first 128 training images) in eval mode: the activation mean and "
    "std of each hidden layer's output, and the norm of each layer's parameter gradient.",
    f"Early learning: test accuracy after epoch {early_epoch}. Gradient ratio: log10(|grad dense_0| / "
    "|grad last hidden layer|), after epoch 1 and after the last epoch.",
  ]


def report_overrides(overrides: tuple) -> str:
  return " ".join(f"`{o}`" for o in overrides)


def _curve_end_rise(s: dict, name: str, last: int = 5) -> float | None:
  """How much the mean test accuracy still rose over the last `last` epochs: a curve still climbing was cut off."""
  c = [p["mean"] for p in s[name]["curve"] if p["mean"] is not None]
  return c[-1] - c[-1 - last] if len(c) > last else None


def _cut_off(s: dict, flat: float = 0.01) -> str:
  """Whether any curve was still climbing when the budget ended (the cosine schedule ends at lr 0)."""
  rising = [n for n in s if (_curve_end_rise(s, n) or 0.0) >= flat]
  if rising:
    return (
      f"Still climbing at the end: {', '.join(rising)}: cut off by the budget, and more steps would narrow the gap."
    )
  return (
    "No curve still climbs at the end (the cosine schedule has taken the lr to 0): the gaps in final accuracy are "
    "where each activation lands with this budget, and a longer schedule, not more of this one, would be needed "
    "to say whether the slow arms catch up."
  )


def _verdict_groups(s: dict, diffs: list[dict], ref: str, metric: str) -> tuple[list[str], list[str], list[str]]:
  ties, worse, better = [], [], []
  for n in s:
    d = _diff(diffs, n, metric)
    if d is None:
      continue
    (ties if d["verdict"] == "tie" else better if d["verdict"] == f"{n} better" else worse).append(n)
  return ties, worse, better


def paragraphs(s: dict, diffs: list[dict], ref: str) -> list[str]:
  out = []
  ties, worse, better = _verdict_groups(s, diffs, ref, "accuracy")
  rows = [f"{n}: {_said(_diff(diffs, n, 'accuracy'))}" for n in s if n != ref]
  out.append(
    f"**Final accuracy.** Against {ref}, seed by seed (test accuracy, a - {ref}): "
    + "; ".join(rows)
    + ". "
    + (f"Tied with {ref}: {', '.join(ties)}. " if ties else "")
    + (f"Below it: {', '.join(worse)}. " if worse else "")
    + (f"Above it: {', '.join(better)}. " if better else "")
    + "A ranking inside a group of ties is not one the seeds support."
  )
  early = [f"{n}: {_said(_diff(diffs, n, 'early_accuracy'))}" for n in s if n != ref]
  rise = [f"{n} {_curve_end_rise(s, n):+.3f}" for n in s if _curve_end_rise(s, n) is not None]
  out.append(
    f"**Learning curves: how fast.** Test accuracy after the early epoch, a - {ref}: " + "; ".join(early) + ". "
    "Still rising over the last 5 epochs (mean test accuracy gained): " + ", ".join(rise) + ". " + _cut_off(s)
  )
  out.append(_saturation(s))
  if worse or ties:
    out.append(
      "**Against the workflow's list.** The choice matters here for "
      + (", ".join(worse) or "none of the arms")
      + f" (resolved below {ref}); between {ref} and {', '.join(ties) or 'no other arm'} it does not (paired ties "
      "in final accuracy), so the common advice to prefer relu or gelu over a zero-centred smooth unit has nothing "
      "to show at this depth and budget."
    )
  return out


def _saturation(s: dict) -> str:
  grads = []
  for n in s:
    r0, r1 = _m(s, n, "grad_ratio_start"), _m(s, n, "grad_ratio_end")
    if r0 is not None:
      grads.append(f"{n} {r0:+.2f} -> {r1:+.2f}" if r1 is not None else f"{n} {r0:+.2f}")
  text = (
    "**Where each saturates.** log10 of the first hidden layer's gradient norm over the last hidden layer's, "
    "after epoch 1 -> after the last epoch: " + "; ".join(grads) + " (0: the gradient reaches the input at the size "
    "it had at the top; -1: ten times smaller; +1: ten times larger). "
  )
  if "sigmoid" in s:
    text += (
      "A sigmoid's derivative is at most 0.25, so each sigmoid layer divides the backward signal by 4 or more: "
      "after epoch 1 the per-layer table shows its gradient norm shrinking layer by layer from the head to "
      "dense_0, and its activations sit in a narrow band around 0.5 (mean near 0.5, std well below the 0.5 of a "
      "0/1 unit), so the first layers barely move at first; the flat start of its learning curve is that. "
    )
  if "tanh" in s:
    text += "tanh (derivative up to 1, zero-centred outputs) passes the gradient at about the same size. "
  if "relu" in s or "gelu" in s:
    text += "relu and gelu pass the gradient of every active unit unchanged; their ratio stays near 0. "
  if "step" in s and (_m(s, "step", "grad_ratio_end") or 0.0) > 0.5:
    text += (
      "The step's straight-through gradient is the identity's, so nothing fades backwards; but the backward pass "
      "ignores that the forward outputs are only 0 or 1 (std ~0.5 in every layer), so the gradient it reports is "
      "not the gradient of the function computed, and by the end it grows layer by layer towards the input "
      f"(x10^{_m(s, 'step', 'grad_ratio_end'):.1f} from the last hidden layer to the first): "
      "a mismatch between forward and backward that a smooth activation does not have."
    )
  return text


def caveats(args) -> list[str]:
  out = [
    "Adam rescales every parameter's update by its own gradient history, so a vanishing gradient costs less "
    "accuracy than it would under plain SGD; the gradient norms show the fading, the accuracies show what is left "
    "of it under Adam. A study with SGD would separate the activations more.",
    "One init scheme for all (lecun_normal, the config's default): variance-preserving for a linear unit, which "
    "He init would improve on for relu and gelu; 'same init scheme' favours none on purpose but is not each "
    "activation's best.",
    "The statistics are on one fixed probe batch of 128 training images, in eval mode, once per epoch: a "
    "snapshot, not an average over training. Activation std is over all units and images of a layer together.",
    "A small MLP on 8x8 digits (4 hidden layers of 64) and one budget (330 steps): the cosine schedule takes "
    "the lr to 0 at the end, so every curve flattens there by design, and an arm still far below the others "
    "when it does (see the curves) has a gap that is partly a speed gap; deeper networks would widen a sigmoid's, "
    "since its fading compounds per layer.",
    "Where the workflow's list implies that the choice matters, the paired ties in What it means are this run's "
    "disagreement with it; they hold for this depth, data and budget only.",
  ]
  if args.quick:
    out.insert(0, "Quick run: a 16-unit MLP, one epoch of three steps, two seeds: the outputs' structure only.")
  return out
