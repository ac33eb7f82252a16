"""The words of the report, written from the numbers (a rerun with other numbers says what those show).

The claims tested: "an under-represented group gets worse accuracy, recall and calibration" (the baseline's
within-arm gaps), and "reweighting / oversampling the group fixes it, at a cost to the majority" (each
remedy against the baseline, per group, paired by seed).
"""

from __future__ import annotations

from experiments.common import report
from experiments.fairness import data


def _row(rows: list[dict], comparison: str, a: str) -> dict | None:
  return next((r for r in rows if r["comparison"] == comparison and r["a"] == a), None)


def _diff(row: dict | None, digits: int = 3) -> str:
  return report.difference_text(row, digits)


def _mean(s: dict, key: str) -> str:
  return "-" if s[key]["mean"] is None else f"{s[key]['mean']:.3f}"


def answer(summaries: dict, versus: list[dict], baseline: str) -> str:
  b = summaries[baseline]
  line = (
    f"With the minority at 5% of training, its test accuracy is {_mean(b, 'minority/accuracy')} against the "
    f"majority's {_mean(b, 'majority/accuracy')} (ECE {_mean(b, 'minority/ece')} vs {_mean(b, 'majority/ece')})"
  )
  for name in summaries:
    if name in (baseline,) or name.startswith("absent"):
      continue
    line += (
      f"; {name}: minority accuracy {_diff(_row(versus, 'minority/accuracy', name))}, majority "
      f"{_diff(_row(versus, 'majority/accuracy', name))} vs baseline"
    )
  return line + "."


def setup(conditions, counts: dict, args, quick_overrides) -> list[str]:
  lines = [
    "Data: scikit-learn's 8x8 digits, jaxflow's own split (stratified 80/20, random_state 0: 1437 train / 360 "
    "test), written as an NPZ (x uint8 [n, 8, 8, 1], y, split, group) by experiments/fairness/data.py.",
    "Group attribute `group`: the minority's images are inverted (255 - x, white digits on black); the minority "
    "is a fixed stratified share of the training images and exactly half of the test images (180 per group, "
    "18 per digit), the same images in every arm and seed.",
    "Model: configs/digits_mlp.py (MLP 256-256, dropout 0.1, Adam 3e-3, cosine) with `data.name=npz:PATH`, "
    "`data.input_feature=features`, `data.group_feature=group`. The uint8 NPZ input is read back /255, like the "
    "shipped digits; image-shaped inputs are not standardized (data.standardize's default).",
    "Steps: about the config's 330 optimizer steps per arm (batch 128; epochs = ceil(330 / (rows // 128))), so "
    "the oversampled arm's longer epoch does not also mean more training.",
  ]
  for c in conditions:
    if c.name in counts:
      n = counts[c.name]
      lines.append(
        f"Arm '{c.name}': {c.remedy}; {n['train_rows']} training rows, {n['train_minority_rows']} of them minority "
        f"({n['train_minority_draw_share']:.1%} of draws, {n['train_distinct_minority']} distinct images)."
      )
  lines += [
    "Reweighting: jaxflow has no per-example or per-group loss weights (`class_weights` weights classes only, "
    "and the minority spans every class). Writing each minority row k times is, in expectation over the uniform "
    "sampler, the same gradient as weighting its loss by k, so the oversampled arm stands for both remedies.",
    f"Seeds: {args.seeds} per arm through jaxflow.seeds (vary='all': init, data order, dropout); seed i of "
    "every arm shares its streams, so differences are paired.",
    "Per-group metrics: summary.json's final eval (`group/<name>/accuracy|balanced_accuracy|ece`, "
    "`group/worst_accuracy`, `group/accuracy_gap`) and `final.per_group[name].recall`.",
  ]
  if args.quick:
    lines.append(f"Quick run: two arms, overrides {', '.join(quick_overrides)}; the numbers mean nothing.")
  return lines


def _bias(summaries: dict, gaps: list[dict], baseline: str) -> str:
  """The claim 'the under-represented group gets worse accuracy, recall and calibration', metric by metric."""
  b = summaries[baseline]
  worse, not_resolved = [], []
  for metric, words in (
    ("accuracy", "accuracy"),
    ("balanced_accuracy", "recall (balanced accuracy)"),
    ("ece", "calibration"),
  ):
    row = _row(gaps, f"{baseline}: {metric}", data.MAJORITY)
    (worse if row and row["verdict"] == f"{data.MAJORITY} better" else not_resolved).append(f"{words} {_diff(row)}")
  recall_gap = [m - n for m, n in zip(b["majority/recall"], b["minority/recall"], strict=True)]
  digit = max(range(len(recall_gap)), key=recall_gap.__getitem__) if recall_gap else None
  text = (
    f"Bias: at 5% of training the minority's accuracy is {_mean(b, 'minority/accuracy')} and the majority's "
    f"{_mean(b, 'majority/accuracy')}. Majority - minority, seed by seed: "
    + "; ".join(worse + not_resolved)
    + " (for ECE a negative difference means the minority is worse calibrated). "
  )
  text += (
    "The minority is resolved worse on every one, as the workflow claims. "
    if not not_resolved
    else f"The claim does not hold, at this resolution, for: {'; '.join(not_resolved)}. "
  )
  if digit is not None:
    text += (
      f"Its recall falls short most on digit {digit} ({b['minority/recall'][digit]:.2f} against "
      f"{b['majority/recall'][digit]:.2f}). "
    )
  return text + (
    f"The overall accuracy on this 50/50 test set, {_mean(b, 'accuracy')}, averages the two; on a test set mixed like "
    "training (5% minority) the minority's errors would barely move it, which is why per-group metrics are needed."
  )


def _trade(summaries: dict, versus: list[dict], baseline: str, absent: str | None) -> str:
  """The claim 'a fairness remedy trades majority accuracy for minority accuracy', remedy by remedy."""
  parts = []
  for name in summaries:
    if name in (baseline, absent):
      continue
    gain, cost = _row(versus, "minority/accuracy", name), _row(versus, "majority/accuracy", name)
    gained = gain is not None and gain["verdict"] == f"{name} better"
    paid = cost is not None and cost["verdict"] == f"{baseline} better"
    base_gap, gap = summaries[baseline]["accuracy_gap"]["mean"], summaries[name]["accuracy_gap"]["mean"]
    closed = (
      f", closing {(base_gap - gap) / base_gap:.0%} of the baseline's gap" if base_gap and gap is not None else ""
    )
    one = paid and cost["resolution"] and abs(cost["mean"]) < 1.5 * cost["resolution"]
    parts.append(
      f"'{name}' {'raised' if gained else 'did not resolvably raise'} the minority's accuracy{closed}, and "
      + (f"cost the majority {_diff(cost)}" if paid else f"cost the majority nothing resolvable ({_diff(cost)})")
      + (" - one test image of 180, resolved by the tie rule but at its edge" if one else "")
    )
  return (
    "Does fairness cost the majority (the usual claim is a trade-off)? "
    + "; ".join(parts)
    + ". Oversampling re-uses the same 71 images and cannot add what they do not show; collecting more minority "
    "images can, which is why the two remedies are reported apart (one test image is 0.0056)."
  )


def paragraphs(summaries: dict, versus: list[dict], gaps: list[dict], baseline: str) -> list[str]:
  out = [_bias(summaries, gaps, baseline)]
  absent = next((n for n in summaries if n.startswith("absent")), None)
  if absent:
    out.append(
      f"Without a single minority image ('{absent}') the minority's accuracy is "
      f"{_mean(summaries[absent], 'minority/accuracy')} (inverted digits are out of distribution; absent - "
      f"baseline {_diff(_row(versus, 'minority/accuracy', absent))}): the baseline's 71 inverted images alone lift it "
      f"to {_mean(summaries[baseline], 'minority/accuracy')}. The majority's accuracy per arm: "
      + ", ".join(f"{_mean(v, 'majority/accuracy')} ({k})" for k, v in summaries.items())
      + " (where its CI has zero width, every seed misses the same number of majority test images)."
    )
  for name in summaries:
    if name in (baseline, absent):
      continue
    out.append(
      f"'{name}' against the baseline, seed by seed: minority accuracy "
      f"{_diff(_row(versus, 'minority/accuracy', name))}, minority balanced accuracy "
      f"{_diff(_row(versus, 'minority/balanced_accuracy', name))}, minority ECE "
      f"{_diff(_row(versus, 'minority/ece', name))}; majority accuracy "
      f"{_diff(_row(versus, 'majority/accuracy', name))}, majority ECE {_diff(_row(versus, 'majority/ece', name))}; "
      f"worst-group accuracy {_diff(_row(versus, 'worst_accuracy', name))}, gap "
      f"{_diff(_row(versus, 'accuracy_gap', name))}; the gap left: {_mean(summaries[name], 'accuracy_gap')}."
    )
  out.append(_trade(summaries, versus, baseline, absent))
  return out


def caveats(args) -> list[str]:
  return [
    f"{args.seeds} seeds per arm; the intervals are Student-t over seeds and cover training randomness only: the "
    "minority's images (which 71 training images, which 180 test images) are fixed, so the study says nothing "
    "about another draw of the group.",
    "The group is synthetic (inverted intensities): a clean covariate shift with the same labels. Real groups "
    "differ in ways that also change label noise, base rates and difficulty, which no resampling removes.",
    "Per-group reweighting is not available in jaxflow; it is represented by duplication (equal in expectation, "
    "not in the variance of the gradient or in what dropout and the optimizer see).",
    "Each group has 180 test images: differences below 1/180 = 0.0056 in accuracy are ties by construction; ECE "
    "over 10 bins on 180 images is itself noisy (its resolution is taken as 1/180 too).",
    "The question is phrased from project issue 20 (the workflow's own wording is not in the repository).",
  ]
