"""The words of the report, written from the numbers (a rerun with other numbers says what those show).

The claim the workflow's question carries, tested here: decide the desired output first and frame the
problem as exactly that output (a binary card for an odd/even question, a regression card for a number).
"""

from __future__ import annotations

from scipy import stats as scipy_stats

from experiments.common import stats


def _mean(result, metric: str) -> float | None:
  return stats.mean_ci(result.values(metric))["mean"]


def _find(diffs: list[dict], comparison: str, b: str) -> dict:
  return next(d for d in diffs if d["comparison"] == comparison and d["b"].startswith(b))


def _versus(d: dict, a_phrase: str, b_phrase: str) -> str:
  """'A ties with B' / 'A beats B' / 'A loses to B' from a paired difference's verdict."""
  if d["verdict"] == "tie":
    return f"{a_phrase} ties with {b_phrase}"
  return f"{a_phrase} {'beats' if d['verdict'].startswith(d['a']) else 'loses to'} {b_phrase}"


def answer(results: dict, diffs: list[dict], refused: list[dict], *, names) -> str:
  multiclass, binary, regression = names
  parity = _find(diffs, "even/odd", "multiclass")
  n_refused = sum(r["refused"] and not r["workdir_written"] for r in refused)
  return (
    "The card alone sets head, loss and metric (10 logits + cross-entropy + accuracy; 1 logit + BCE + accuracy; "
    f"1 value + MSE + MAE); for odd/even, {_versus(parity, 'the binary model', 'the 10-class model mapped to parity')} "
    f"({_mean(results[binary], 'accuracy'):.3f} vs {_mean(results[multiclass], 'parity_accuracy'):.3f}); regression's "
    f"rounded value names the digit {_mean(results[regression], 'rounded_accuracy'):.3f} of the time (multiclass "
    f"{_mean(results[multiclass], 'accuracy'):.3f}); {n_refused} of {len(refused)} mismatched cards were refused "
    "before training."
  )


def paragraphs(results: dict, diffs: list[dict], refused: list[dict], *, names) -> list[str]:
  multiclass, binary, regression = names
  parity = _find(diffs, "even/odd", "multiclass")
  digit = _find(diffs, "which digit", "regression")
  value = _find(diffs, "digit value error", "multiclass")
  out = [
    "**The card is the problem statement.** Only `config.problem` (and, for regression, the monitored metric) "
    "differs between the three arms; jaxflow derives the rest: a head of 10 logits, 1 logit or 1 value, the loss "
    "that goes with it, and the metrics it measures (accuracy-like for both classifications, MAE for regression). "
    "The exported model card then says what a deployed model returns: 10 class probabilities, [P(even), P(odd)], "
    "or a number.",
    f"**Odd or even.** {_versus(parity, 'The binary model', 'the multiclass model mapped to parity')}"
    f" (paired difference {parity['mean']:+.4f}, 95% CI [{parity['ci95'][0]:+.4f}, {parity['ci95'][1]:+.4f}] "
    f"over {parity['n']} seeds; one test image is {parity['resolution']:.4f})."
    if parity["ci95"]
    else "**Odd or even.** Too few seeds for an interval.",
  ]
  why = (
    "The binary target lumps visually unrelated digits (1 with 7 and 9, 0 with 8 and 2) into one class, while the "
    "10-class labels tell the model which shapes belong together; the coarse card throws that supervision away."
  )
  if parity["verdict"] == "tie":
    out.append(
      "So the data do not support the claim that the card should state exactly the desired output: the binary card "
      "was no better at odd/even than asking the finer question (which of 10 digits) and deriving the answer. " + why
    )
  elif parity["verdict"] != f"{binary} better":
    out.append(
      "This disagrees with the claim that the card should state exactly the desired output: asking the finer "
      "question (which of 10 digits) and deriving odd/even from it did better than the binary card. " + why
    )
  else:
    out.append("Here the claim holds: the card stating exactly the desired output (binary) did best on it.")
  out.append(
    f"**A digit is a name, not a quantity.** {_versus(digit, 'The multiclass model', 'the rounded regression')}"
    f" at naming the digit ({_mean(results[multiclass], 'accuracy'):.3f} vs "
    f"{_mean(results[regression], 'rounded_accuracy'):.3f}). Regression assumes the output is ordered and that being "
    "off by one is better than being off by five; a 7 does not look like an average of 6 and 8, so the model "
    "hedges between look-alikes and its value lands between them (see the scatter). On its own metric, "
    f"{_versus(value, 'the regression', 'the multiclass model')} at the mean distance to the true value "
    f"({_mean(results[regression], 'mae'):.3f} vs {_mean(results[multiclass], 'value_mae'):.3f})"
    + (
      ": a classifier that is almost always right is rarely off at all, even if its rare mistakes are far."
      if value["verdict"] == f"{multiclass} better"
      else "."
    )
  )
  ok = [r for r in refused if r["refused"] and not r["workdir_written"]]
  slowest = max((r["seconds"] for r in refused), default=0.0)
  out.append(
    f"**Cards that do not fit.** {len(ok)} of {len(refused)} mismatched cards were refused by `jaxflow.seeds` before "
    f"any training and before any workdir was written (each within {slowest:.2f} s), with a one-line message naming "
    "the field; the likeliest slip, changing `problem.kind` to regression and nothing else, is refused because the "
    "default monitor (eval/accuracy) is not measured for a regression."
  )
  return out


def caveats(epochs: int, seeds: int) -> list[str]:
  t = float(scipy_stats.t.ppf(0.975, seeds - 1)) if seeds > 1 else float("nan")
  return [
    f"One dataset (8x8 digits, 360 test images), one model (the digits MLP) and one training budget ({epochs} epochs, "
    "the learning rate tuned for the multiclass config) for every framing: none was tuned for its own card.",
    "Regressing a digit's value is a deliberately poor framing: a real quantity (a count, a price) is ordered, and "
    "regression would not be handicapped the same way.",
    "Resolution: one test image is 1/360 = 0.0028 of an accuracy; a difference below it, or with a 95% CI that "
    f"contains 0, is a tie. With {seeds} seeds the t-interval is wide (t = {t:.2f}): small differences cannot be "
    "resolved.",
    "jaxflow's workdir does not record the resolved loss or the head width: the loss is read from the config "
    "(`loss=None` means the kind's default, as configs/base.py documents) and the head from the parameter counts "
    "(the layers below the head are the same in every framing); the exported model card states the output.",
    "Multiclass parity and value error come from the final confusion matrix (the argmax digit), not from its "
    "probabilities; the regression's come from the exported final-epoch parameters (`checkpoint='latest'`).",
  ]
