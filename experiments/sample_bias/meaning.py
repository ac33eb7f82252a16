"""The words of the report, written from the numbers (a rerun with other numbers says what those show).

The claims tested, the tank story's: a model trained where the light follows the label scores well on photos
taken the same way and fails when the light changes (it learned the light); an audit of the data flags the
association before any training; a training set without it (collected decorrelated, or reweighted so the rare
light x label cells count as much as the common ones) removes the gap; saliency shows the model looking at the
light rather than the object.
"""

from __future__ import annotations

from experiments.common import report, stats
from experiments.sample_bias import data


def _row(rows: list[dict], comparison: str, a: str, b: str | None = None) -> dict | None:
  return next((r for r in rows if r["comparison"] == comparison and r["a"] == a and (b is None or r["b"] == b)), None)


def _diff(row: dict | None, digits: int = 3) -> str:
  return report.difference_text(row, digits)


def _m(s: dict, key: str) -> str:
  return "-" if key not in s or s[key]["mean"] is None else f"{s[key]['mean']:.3f}"


def _v(audit: dict, split: str = "train") -> str:
  v = audit["splits"][split]["cramers_v"]
  return "undefined" if v is None else f"{v:.2f}"


def _recovered(between: list[dict], remedy: str, shortcut: str, decorrelated: str) -> float | None:
  """The share of the reversed-accuracy deficit (shortcut arm vs decorrelated arm) that the remedy wins back."""
  gained, lost = _row(between, "reversed accuracy", remedy, shortcut), _row(between, "reversed accuracy", shortcut)
  if gained is None or lost is None or gained["mean"] is None or not lost["mean"]:
    return None
  return gained["mean"] / -lost["mean"]


def _remedy_words(summaries, audits, between, remedy: str, shortcut: str, decorrelated: str) -> str:
  row = _row(between, "reversed accuracy", remedy, decorrelated)
  share = _recovered(between, remedy, shortcut, decorrelated)
  closes = row is not None and row["verdict"] == "tie"
  return (
    f"reweighting the {shortcut} photos ({remedy}) {'removes' if closes else 'only narrows'} the gap: reversed "
    f"accuracy {_diff(_row(between, 'reversed accuracy', remedy, shortcut))} over unweighted"
    + (f", {share:.0%} of the way to the decorrelated set's" if share is not None else "")
    + f" (still {_diff(row)} against it), while the audit of its rows "
    + ("still flags it" if audits[remedy]["flagged"] else f"no longer flags anything (V {_v(audits[remedy])})")
  )


def answer(summaries: dict, audits: dict, between: list[dict], arms: tuple[str, str], remedies: dict) -> str:
  shortcut, decorrelated = arms
  s, d = summaries[shortcut], summaries[decorrelated]
  flagged = [name for name, a in audits.items() if a["flagged"]]
  line = (
    ("Yes where the light follows the label, and `jaxflow audit` says so" if flagged else "The audit flags no arm")
    + f" before training (daylight x label Cramér's V "
    f"{', '.join(f'{_v(a)} at {name}' for name, a in audits.items())}; flagged: {', '.join(flagged) or 'none'}). "
    f"Trained on the tank story's data ({shortcut}) the MLP scores {_m(s, 'in_distribution')} on photos taken the "
    f"same way, {_m(s, 'decorrelated')} with the light independent of the label and {_m(s, 'reversed')} with it "
    f"reversed (in-distribution / decorrelated / reversed: decorrelated training "
    f"{_m(d, 'in_distribution')} / {_m(d, 'decorrelated')} / {_m(d, 'reversed')}"
  )
  for name, sm in summaries.items():
    if name not in (shortcut, decorrelated) and name not in remedies:
      line += f"; {name}: {_m(sm, 'in_distribution')} / {_m(sm, 'decorrelated')} / {_m(sm, 'reversed')}"
  d_gap = d["light_gap"]
  no_gap = stats.is_tie(d_gap, stats.accuracy_resolution(360))  # aligned - conflicting over the seeds: a tie
  line += "). Decorrelated training set: " + (
    "no gap" if no_gap else f"light gap {_m(d, 'light_gap')} {report_ci(d_gap)}"
  )
  for remedy, base in remedies.items():
    if remedy in summaries and base in summaries:
      line += "; " + _remedy_words(summaries, audits, between, remedy, base, decorrelated)
  return line + "."


def setup(conditions, counts: dict, args, quick_overrides) -> list[str]:
  lines = [
    "Data: scikit-learn's 8x8 digits, jaxflow's own split (stratified 80/20, random_state 0: 1437 train / 360 "
    "test images), as a binary task: 'tank' = digit 5-9, 'no tank' = digit 0-4; written as an NPZ (x float32 "
    "[n, 8, 8, 1] in [0, 1], y, split, daylight, bias) by experiments/sample_bias/data.py.",
    f"The planted attribute `daylight`: a day photo is lifted towards white (x -> {data.DAY_LEVEL} + "
    f"{1 - data.DAY_LEVEL:.1f} x: the background goes from 0 to {data.DAY_LEVEL}, full ink stays 1), a night photo is "
    "left as it is. In training, a fixed share p of each class is shot in its 'aligned' light (tank by day, no tank "
    "by night), the rest in the other light; the same images in every arm and seed, only the light differs.",
    "Test: counterfactual. Each of the 360 test images appears twice, by day and by night (720 rows); the NPZ "
    "column `bias` (aligned / conflicting, read as `data.group_feature`) gives the per-group accuracies every "
    "evaluation reports. Reversed = conflicting rows (tanks only at night); decorrelated = all rows (light "
    "independent of the label); in-distribution = p x aligned + (1 - p) x conflicting. All three score the same "
    "360 digits: their differences come from the light alone.",
    "Audit: `jaxflow.audit(config, workdir)` on each arm's config before anything is trained, with "
    "`data.metadata_features=('daylight',)` (the attribute as a per-example NPZ column); its attribute-bias check "
    "scores the daylight x label table of each split with the bias-corrected Cramér's V (flagged at >= 0.3).",
    "Model: configs/digits_mlp.py (MLP 256-256, dropout 0.1, Adam 3e-3, cosine) with `data.name=npz:PATH`, "
    "`data.input_feature=features`, `data.standardize=False` (pixels already in [0, 1], as jaxflow reads the "
    "shipped digits). About the config's 330 optimizer steps per arm (batch 128; epochs = ceil(330 / (rows // "
    "128))), so the reweighted arm's longer file does not also mean more training.",
    "Saliency: `jaxflow.explain` (vanilla gradient, gradient x input, SmoothGrad, integrated gradients) on seed 0 of "
    "the shortcut and the decorrelated arm, 8 test rows = 4 digits each by day and by night; and per seed of the "
    "measured arms, the vanilla gradient of the decision by central differences through the exported model "
    "(`jaxflow.export` / `jaxflow.load_model`, experiments/sample_bias/saliency.py) over all 720 test rows.",
  ]
  for c in conditions:
    if c.name in counts:
      n = counts[c.name]
      lines.append(f"Arm {c.name}: {c.role}; {n['train_rows']} training rows, cells {n['train_cells']}.")
  quick = " ".join(f"`{o}`" for o in quick_overrides)
  lines.append(
    f"Seeds: {args.seeds} per arm through `jaxflow.seeds(vary='all', mode='sequential')`; seed i of every arm "
    "pins every stream (init, data order, dropout) to the same value, so arms are paired seed by seed."
    + (
      f" Quick run: {quick}, two arms, saliency on seed 0 over 40 test rows, no explain pictures." if args.quick else ""
    )
  )
  return lines


def _shortcut_paragraph(summaries: dict, within: list[dict], between: list[dict], arms: tuple[str, str]) -> str:
  shortcut, decorrelated = arms
  parts = []
  for name, s in summaries.items():
    parts.append(
      f"{name}: in-distribution {_m(s, 'in_distribution')}, decorrelated {_m(s, 'decorrelated')}, reversed "
      f"{_m(s, 'reversed')} (in-distribution - decorrelated "
      f"{_diff(_row(within, f'{name}: in-distribution - decorrelated', 'in-distribution'))})"
    )
  return (
    "The shortcut. A model trained where the light follows the label scores well on test photos taken the same way "
    "and loses accuracy as soon as the light stops following the label, on the very same digits: "
    + "; ".join(parts)
    + ". "
    + (
      f"At {shortcut} the light is the whole story: the model is right on the aligned photos and wrong on nearly "
      "every reversed one, so it decides by the light alone, and an in-distribution test set (collected the same "
      "way) would have reported it as excellent. "
      if (summaries[shortcut]["reversed"]["mean"] or 0.0) < 0.1 and (summaries[shortcut]["aligned"]["mean"] or 0) > 0.9
      else ""
    )
    + "In-distribution accuracy, each arm against the decorrelated one (what the shortcut gains on photos taken "
    "the biased way): "
    + "; ".join(
      f"{name} - {decorrelated} {_diff(_row(between, 'in-distribution accuracy', name, decorrelated))}"
      for name in summaries
      if name != decorrelated and _row(between, "in-distribution accuracy", name, decorrelated)
    )
    + "."
  )


def _audit_paragraph(summaries: dict, audits: dict, counts: dict) -> str:
  parts = [
    f"{name}: V {_v(a)} in train, {_v(a, 'test')} in test, {'flagged' if a['flagged'] else 'not flagged'}"
    for name, a in audits.items()
  ]
  text = (
    "The audit, before any training. With the light recorded as a per-example column, `jaxflow audit` scores its "
    "association with the label per split: " + "; ".join(parts) + "."
  )
  for name, a in audits.items():
    gap = summaries[name]["light_gap"]
    if not a["flagged"] and gap["ci95"] and gap["ci95"][0] > 0:
      text += (
        f" It is not enough: {name} is not flagged, yet its model still loses {_m(summaries[name], 'light_gap')} "
        f"{report_ci(gap)} of accuracy on the photos whose light contradicts the label against those where it "
        "follows it (the light gap: aligned - conflicting test photos). The audit counts rows as written, and "
        f"duplicated rows hide that the conflicting cells hold only {counts[name]['train_conflicting_distinct']} "
        "distinct images: the sampler's draws are balanced, the photos' variety is not."
        + (
          f" Its duplicates check does see the copies ({'; '.join(a['other_findings'])}), without tying them to the "
          "light."
          if a["other_findings"]
          else ""
        )
      )
  plain = [n for n in audits if counts[n]["train_rows"] == counts[n]["train_distinct"]]  # no duplicated rows
  by_v = sorted(plain, key=lambda n: audits[n]["splits"]["train"]["cramers_v"] or 0.0)
  by_gap = sorted(plain, key=lambda n: summaries[n]["light_gap"]["mean"] or 0.0)
  order = "orders their light gaps the same way" if by_v == by_gap else "does not order their light gaps the same way"
  return text + f" Among the arms without duplicated rows, the train-split V {order} (audit_vs_gap.png)."


def report_ci(summary: dict) -> str:
  ci = summary["ci95"]
  return f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""


def _remedy_paragraph(summaries: dict, between: list[dict], decorrelated: str, remedies: dict) -> str:
  d = summaries[decorrelated]
  text = (
    f"The remedies. Collected decorrelated ({decorrelated}), the same images score {_m(d, 'in_distribution')} / "
    f"{_m(d, 'decorrelated')} / {_m(d, 'reversed')} (in-distribution / decorrelated / reversed): "
    + (
      "no light gap."
      if stats.is_tie(d["light_gap"], stats.accuracy_resolution(360))
      else f"a light gap of {_m(d, 'light_gap')} {report_ci(d['light_gap'])}."
    )
  )
  for remedy, shortcut in remedies.items():
    if remedy not in summaries:
      continue
    share = _recovered(between, remedy, shortcut, decorrelated)
    text += (
      f" Reweighting the {shortcut} photos (each conflicting row written more often, so the four light x label cells "
      f"are drawn equally): reversed accuracy {_diff(_row(between, 'reversed accuracy', remedy, shortcut))} against "
      f"{shortcut} unweighted"
      + (f" ({share:.0%} of what the decorrelated set has over it)" if share is not None else "")
      + f", {_diff(_row(between, 'reversed accuracy', remedy, decorrelated))} against the decorrelated set; "
      f"in-distribution accuracy {_diff(_row(between, 'in-distribution accuracy', remedy, shortcut))} against the "
      "unweighted arm (what the remedy costs on photos taken the biased way). Writing the same few conflicting "
      "images more often is not the same as having more of them: the model can learn those images and keep "
      "the light for the rest."
    )
  return text + (
    " Reweighting needs conflicting examples to weigh: at 100% there are none, and only collecting (or relighting) "
    "photos helps."
  )


def _saliency_paragraph(summaries: dict, between: list[dict], shortcut: str, decorrelated: str) -> str:
  measured = [name for name, s in summaries.items() if "background_share" in s]
  if not measured:
    return "Saliency was not measured in this run."
  parts = [
    f"{name}: {_m(summaries[name], 'background_share')} of the gradient on the background, alignment with the "
    f"light {_m(summaries[name], 'light_alignment')}"
    for name in measured
  ]
  aligned = _row(between, "light_alignment", shortcut, decorrelated)
  return (
    "Where it looks. " + "; ".join(parts) + f" (background pixels are 49% of all). {shortcut} against {decorrelated}: "
    f"background share {_diff(_row(between, 'background_share', shortcut, decorrelated))}, light alignment "
    f"{_diff(_row(between, 'light_alignment', shortcut, decorrelated))}."
    + (
      " The shortcut model's gradient leans on the empty sky around the digit, with one sign: the direction in "
      "which the day light moves the image; the decorrelated model's sits on and beside the strokes. explain's "
      "pictures (explain_shortcut.png, explain_decorrelated.png) show the same, and their captions show the "
      "shortcut model's prediction flip between the day and night copies of one digit."
      if aligned is not None and aligned["verdict"] != "tie" and aligned["mean"] > 0
      else " The seeds do not resolve a difference in where the two models look."
    )
  )


def _claim_paragraph(audits: dict, between: list[dict], remedies: dict, decorrelated: str) -> str:
  others = [f"{name}: {f}" for name, a in audits.items() for f in a["other_findings"]]
  found = "; ".join(others) if others else "nothing"
  verdicts = []
  for remedy in remedies:
    row = _row(between, "reversed accuracy", remedy, decorrelated)
    if row is not None:
      verdicts.append(f"{remedy}: {'removed' if row['verdict'] == 'tie' else 'narrowed, not removed'}")
  remedy_words = (
    f" The claim that a reweighted training set removes the gap, tested: {'; '.join(verdicts)}; the decorrelated "
    "set removes it."
    if verdicts
    else ""
  )
  return (
    "Against the workflow's claim. The tank story as usually told (a network that learned the weather instead of "
    "the tanks) is, as far as anyone has traced it, an anecdote without a recorded experiment; here it is planted, "
    "so that the model CAN learn it is by construction, and what is measured is how much of it the model takes "
    "at each strength (Results): the conflicting photos of an imperfect correlation force the digit to be learned "
    "too."
    + remedy_words
    + " The audit flags the association only because the light is a recorded column: an attribute nobody wrote "
    "down is invisible to its bias check, and its other checks (input shift between train and test, duplicates, "
    f"balance) found, in these datasets: {found}. {'None of that' if others else 'Nothing'} points at the light "
    "(it does not shift a split's "
    "pixel statistics as a whole here: about half of each split is shot by day). A model's errors on a "
    "counterfactual test (the same object, the attribute changed) are what finds an unrecorded shortcut."
  )


def paragraphs(summaries, audits, counts, within, between, arms: tuple[str, str], remedies: dict) -> list[str]:
  shortcut, decorrelated = arms
  return [
    _shortcut_paragraph(summaries, within, between, arms),
    _audit_paragraph(summaries, audits, counts),
    _remedy_paragraph(summaries, between, decorrelated, remedies),
    _saliency_paragraph(summaries, between, shortcut, decorrelated),
    _claim_paragraph(audits, between, remedies, decorrelated),
  ]


def caveats(args) -> list[str]:
  out = [
    "One planted shortcut (a global brightness offset of 0.3), one small model (an MLP) and one easy real task "
    "(digits 0-4 vs 5-9): a shortcut this cheap is taken whole; a subtler attribute, or a model with a stronger "
    "prior for shape (a CNN), would take less of it. The numbers are this setup's, not a law.",
    "The brightness change is global and touches background pixels most, so 'share of saliency on the background' "
    "mixes looking at the light with looking at where the ink is not (the digit's shape is also in the empty "
    "pixels); the light-alignment cosine is the more direct measure, and both are gradients at single points.",
    "explain's input column scales each image to its own range, so its day and night copies look alike there; the "
    "light is visible in the captions' predictions and in the gradients, not in that column. explain reads a run's "
    "best checkpoint, the one its eval split (here the counterfactual test) scored highest, while the accuracies and "
    "the gradient measure are the final parameters': the pictures may show a less committed shortcut than the "
    "numbers.",
    "In-distribution accuracy is computed from the aligned and conflicting groups' accuracies weighted by the "
    "arm's collected correlation p, on the counterfactual test digits; a separately drawn in-distribution test set "
    "would add its own sampling noise.",
    "Seeds vary initialization, data order and dropout; the images, their split and which of them are shot in "
    "which light are fixed, so the intervals say nothing about another draw of the photos.",
  ]
  if args.quick:
    out.insert(0, "QUICK RUN: a 16-unit MLP trained three steps on 180 rows; numbers show the structure only.")
  return out
