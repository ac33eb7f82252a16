"""The words of the report, written from the numbers (a rerun with other numbers says what those show).

The claims tested: a rare class is fixed by rebalancing (oversampling or class weights), the focal loss is a
remedy for imbalance, and the remedies keep their order whatever the ratio. What the old study found at 13.5:1
(oversampling and class weights raise the rare recall and close part of the gap, the focal loss does not help,
the ranking among the helpful remedies is within the seeds' noise) is restated only where this run shows it.
"""

from __future__ import annotations

from experiments.harness_extras import ranking_text


def _mean(f: dict, remedy: str, metric: str) -> float | None:
  s = f["remedies"].get(remedy, {}).get(metric)
  return None if s is None else s["mean"]


def _fmt(v: float | None) -> str:
  return "-" if v is None else f"{v:.2f}"


def answer(findings: dict, reference_recall: float | None) -> str:
  better = []
  for ratio, f in findings.items():
    winners = [a for a, beaten in f["ranking"]["balanced_accuracy"] if "plain" in beaten]
    better.append(f"{' and '.join(winners) or 'none'} at {ratio}")
  never = [k for k in next(iter(findings.values()))["remedies"] if k != "plain" and not any(k in b for b in better)]
  recall = []
  for ratio, f in findings.items():
    best = f["ranking"]["rare_recall"][0][0]
    won = f["gap_closed"].get(best)
    recall.append(
      f"{_fmt(_mean(f, 'plain', 'rare_recall'))} -> {_fmt(_mean(f, best, 'rare_recall'))} at {ratio}"
      + (f" ({won:.0%} of the loss won back)" if won is not None else "")
    )
  ref = f" (no skew: {_fmt(reference_recall)})" if reference_recall is not None else ""
  return (
    f"Better than plain on balanced accuracy (paired, 95% CI): {'; '.join(better)}"
    + (f"; {' and '.join(never)} at no ratio" if never else "")
    + f". The rare class's recall, plain -> best remedy: {', '.join(recall)}{ref}."
  )


def _verdicts(f: dict, metric_label: str) -> list[str]:
  return [
    f"{d['a']} {d['mean']:+.3f} ({d['verdict']})"
    for d in f["versus_plain"]
    if d["comparison"].endswith(metric_label) and d["mean"] is not None
  ]


def _helps(f: dict, remedy: str, label: str) -> bool:
  return any(
    d["a"] == remedy and d["comparison"].endswith(label) and d["verdict"] == f"{remedy} better"
    for d in f["versus_plain"]
  )


def paragraphs(findings: dict, reference, rare: int) -> list[str]:
  ratios = list(findings)
  label = f"recall of {rare}"
  out = []
  plain = [f"{_fmt(_mean(findings[r], 'plain', 'rare_recall'))} at {r}" for r in ratios]
  ref, others = None, ""
  if reference is not None:
    kept = [row for row in reference.per_seed if row]
    ref = sum(row["rare_recall"] for row in kept) / len(kept) if kept else None
    base = [sum(row["recall"][c] for row in kept) / len(kept) for c in range(10)] if kept else None
    drops = [
      base[c] - f["remedies"]["plain"]["recall_per_class"][c]
      for f in findings.values()
      for c in range(10)
      if c != rare and base and f["remedies"]["plain"]["recall_per_class"]
    ]
    if drops:
      others = (
        f" The other classes' mean recall stays within {max(abs(d) for d in drops):.2f} of the reference's at "
        "every ratio (per-class table): the rare class's test images go to the common classes, and the lost "
        "balanced accuracy is almost all the rare class's."
      )
  out.append(
    f"**What the skew costs.** Trained plain, the rare class's recall is {', '.join(plain)}"
    + (f" (with no skew: {_fmt(ref)})" if ref is not None else "")
    + "."
    + others
  )
  for r in ratios:
    f = findings[r]
    out.append(
      f"**{r}.** Against plain at the same seed, recall of {rare}: {'; '.join(_verdicts(f, label))}. Balanced "
      f"accuracy: {'; '.join(_verdicts(f, 'balanced accuracy'))}."
      + (f" Share of the skew's recall loss won back: {_gap(f)}." if f["gap_closed"] else "")
    )
  out.append(_ranking_paragraph(findings))
  if "focal" in findings[ratios[0]]["remedies"]:
    out.append(_focal(findings, label))
  out.append(_precision(findings, rare))
  return out


def _gap(f: dict) -> str:
  return ", ".join(f"{k} {v:.0%}" for k, v in f["gap_closed"].items())


def _ranking_paragraph(findings: dict) -> str:
  rows = [f"{r}: {ranking_text(f['ranking']['balanced_accuracy'])}" for r, f in findings.items()]
  text = (
    "**How the ranking changes.** By balanced accuracy, best mean first, each remedy with the ones it is resolved "
    f"better than: {'; '.join(rows)}. "
  )
  beaten_plain = {
    r: [a for a, beaten in f["ranking"]["balanced_accuracy"] if "plain" in beaten] for r, f in findings.items()
  }
  text += "Better than plain: " + "; ".join(f"{', '.join(v) or 'none'} at {r}" for r, v in beaten_plain.items()) + ". "
  resolved = [
    r
    for r, f in findings.items()
    if any(b != "plain" for a, beaten in f["ranking"]["balanced_accuracy"] if a != "plain" for b in beaten)
  ]
  text += (
    f"Among the remedies themselves an order is resolved only at {', '.join(resolved)}; "
    if resolved
    else "No remedy is resolved better than another remedy at any ratio; "
  )
  return text + (
    "oversampling and class weights do nearly the same thing (the rare class weighs as much as a common one, by "
    "repetition or by weight), and which of the two has the higher mean is noise unless marked."
  )


def _focal(findings: dict, label: str) -> str:
  helps = [r for r, f in findings.items() if _helps(f, "focal", label)]
  rebalancers = [r for r, f in findings.items() if _helps(f, "oversample", label) or _helps(f, "class weights", label)]
  text = (
    "**The focal loss is not an imbalance remedy here.** "
    + (
      f"It raises the rare class's recall over plain only at {', '.join(helps)}"
      if helps
      else "It does not raise the rare class's recall over plain at any ratio"
    )
    + (f", while oversampling or class weights do at {', '.join(rebalancers)}" if rebalancers else "")
    + f". The MLP fits its training set (training accuracy {_train_range(findings)} in the last epoch), the few "
    "rare images included, so the focal term (which down-weighs "
    "well-classified examples) falls on the rare class as on the common ones: it targets hard examples, not rare "
    "classes. It has no class-balancing alpha here (`class_weights` is jaxflow's knob for that)."
  )
  return text


def _train_range(findings: dict) -> str:
  means = [s["train_accuracy"]["mean"] for f in findings.values() for s in f["remedies"].values()]
  means = [m for m in means if m is not None]
  return f"{min(means):.3f}-{max(means):.3f} (means per arm)" if means else "not logged"


def _precision(findings: dict, rare: int) -> str:
  rows = []
  for r, f in findings.items():
    p = ", ".join(f"{k} {_fmt(_mean(f, k, 'rare_precision'))}" for k in f["remedies"])
    rows.append(f"{r}: {p}")
  gaps = {r: max(f["gap_closed"].values()) for r, f in findings.items() if f["gap_closed"]}
  reach = (
    "No remedy reaches the unskewed reference: the best wins back "
    + ", ".join(f"{g:.0%} at {r}" for r, g in gaps.items())
    + " of the recall the skew cost. Weighing or repeating the few rare images makes the model insist on what "
    "those images show; it adds nothing about what else a 1 looks like, and the fewer there are, the less it wins."
    if gaps and max(gaps.values()) < 1
    else ""
  )
  return (
    f"**What the remedies cost, and where they stop.** Precision of {rare} ({'; '.join(rows)}; it is undefined, "
    "counted 0, for a seed that predicts no 1 at all, so its interval is wide where few 1s are predicted). " + reach
  )


def caveats(seeds: int, findings: dict, rare: int) -> list[str]:
  support = next(iter(findings.values()))["rare_support"]
  return [
    f"{seeds} seeds per arm; one test image of {rare} is {1 / support:.3f} of its recall, so recall differences "
    "below that are ties by the resolution rule, and the 95% t-interval of so few seeds is wide.",
    "The workflow's 200:1 is approximated by 135:1: at that ratio the rare class is one image, a different one "
    "per seed, and which image it is dominates the result (the spread between seeds is the spread between images).",
    "Ten classes of which one is rare is not the workflow's two-class case; balanced accuracy averages over all "
    "ten, so the rare class moves it by a tenth of its recall change.",
    "The test split is balanced (35-37 per class): accuracy and balanced accuracy nearly coincide here; on a test "
    "set as skewed as the training set, accuracy would hide the rare class entirely.",
    "Hyperparameters are the config's, tuned without skew; class weights are inverse frequency without a cap, "
    "which at 135:1 weighs one image 135 times a common one; the focal loss has gamma 2 and no alpha.",
    "Final-epoch metrics; no epoch selection, no threshold tuning (moving the decision threshold is another "
    "remedy, not measured here).",
  ]
