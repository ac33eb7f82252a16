"""The words of the report, written from the numbers (a rerun with other numbers says what those show).

The claims tested, the tank story's: a model trained where the light follows the label scores well on photos
taken the same way and fails when the light changes (it learned the light); an audit of the data flags the
association before any training; a training set without it (collected decorrelated, or reweighted so the rare
light x label cells count as much as the common ones) removes the gap; saliency shows the model looking at the
light rather than the object.
"""

from __future__ import annotations

from experiments.sample_bias import data


def _row(rows: list[dict], comparison: str, a: str, b: str | None = None) -> dict | None:
  return next((r for r in rows if r["comparison"] == comparison and r["a"] == a and (b is None or r["b"] == b)), None)


def _diff(row: dict | None) -> str:
  if row is None or row["mean"] is None:
    return "not measured"
  ci = row["ci95"]
  interval = f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else ""
  return f"{row['mean']:+.3f}{interval} ({'tie' if row['verdict'] == 'tie' else 'resolved'})"


def _m(s: dict, key: str) -> str:
  return "-" if key not in s or s[key]["mean"] is None else f"{s[key]['mean']:.3f}"


def _v(audit: dict, split: str = "train") -> str:
  v = audit["splits"][split]["cramers_v"]
  return "undefined" if v is None else f"{v:.2f}"


def answer(summaries: dict, audits: dict, between: list[dict], shortcut: str, decorrelated: str) -> str:
  s, d = summaries[shortcut], summaries[decorrelated]
  flagged = [name for name, a in audits.items() if a["flagged"]]
  line = (
    ("Yes where the light follows the label, and `jaxflow audit` says so" if flagged else "The audit flags no arm")
    + f" before training (daylight x label Cramér's "
    f"V {', '.join(f'{_v(a)} at {name}' for name, a in audits.items())}; flagged: {', '.join(flagged) or 'none'}). "
    f"Trained on the tank story's data ({shortcut}) the MLP scores {_m(s, 'in_distribution')} on photos taken the "
    f"same way, {_m(s, 'decorrelated')} when the light is independent of the label and {_m(s, 'reversed')} when it "
    f"is reversed; trained decorrelated: {_m(d, 'in_distribution')} / {_m(d, 'decorrelated')} / {_m(d, 'reversed')}"
  )
  for name, sm in summaries.items():
    if name in (shortcut, decorrelated):
      continue
    line += f"; {name}: {_m(sm, 'in_distribution')} / {_m(sm, 'decorrelated')} / {_m(sm, 'reversed')}"
    reversed_row = _row(between, "reversed accuracy", name, decorrelated)
    if "reweighted" in name and reversed_row is not None:
      line += f" (reversed vs decorrelated {_diff(reversed_row)})"
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


def _shortcut_paragraph(summaries: dict, within: list[dict], shortcut: str, decorrelated: str) -> str:
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
    + f". At {shortcut} the light is the whole story: the model is right on the aligned photos and wrong on nearly "
    "every reversed one, so it decides by the light alone, and an in-distribution test set (collected the same way) "
    "would have reported it as excellent."
  )


def _audit_paragraph(audits: dict) -> str:
  parts = [
    f"{name}: V {_v(a)} in train, {_v(a, 'test')} in test, {'flagged' if a['flagged'] else 'not flagged'}"
    for name, a in audits.items()
  ]
  return (
    "The audit, before any training. With the light recorded as a per-example column, `jaxflow audit` scores its "
    "association with the label per split: "
    + "; ".join(parts)
    + ". The train-split V ranks the arms as their trained light gaps do (audit_vs_gap.png). The reweighted arm's "
    "audit scores the rows as written (duplicates included), i.e. what the sampler draws: the rebalanced draws are "
    "independent of the light, while the photos collected are still 90% aligned."
  )


def _remedy_paragraph(summaries: dict, between: list[dict], decorrelated: str, remedies: dict) -> str:
  d = summaries[decorrelated]
  text = (
    f"The remedies. Collected decorrelated ({decorrelated}), the same images score {_m(d, 'in_distribution')} / "
    f"{_m(d, 'decorrelated')} / {_m(d, 'reversed')} (in-distribution / decorrelated / reversed): no light gap to "
    "speak of."
  )
  for remedy, shortcut in remedies.items():
    if remedy not in summaries:
      continue
    text += (
      f" Reweighting the {shortcut} photos (each conflicting row written more often, so the four light x label cells "
      f"are drawn equally): reversed accuracy {_diff(_row(between, 'reversed accuracy', remedy, shortcut))} against "
      f"{shortcut} unweighted, {_diff(_row(between, 'reversed accuracy', remedy, decorrelated))} against the "
      f"decorrelated set; in-distribution accuracy "
      f"{_diff(_row(between, 'in-distribution accuracy', remedy, shortcut))} against the unweighted arm "
      "(what the remedy costs on photos taken the biased way)."
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
  return (
    "Where it looks. " + "; ".join(parts) + f" (background pixels are 49% of all). {shortcut} against {decorrelated}: "
    f"background share {_diff(_row(between, 'background_share', shortcut, decorrelated))}, light alignment "
    f"{_diff(_row(between, 'light_alignment', shortcut, decorrelated))}. The shortcut model's gradient spreads over "
    "the empty sky around the digit with one sign, the direction in which the day light moves the image; the "
    "decorrelated model's sits on and beside the strokes. explain's pictures (explain_shortcut.png, "
    "explain_decorrelated.png) show the same, and their captions show the shortcut model's prediction flip between "
    "the day and night copies of one digit."
  )


def paragraphs(summaries, audits, within, between, shortcut: str, decorrelated: str, remedies: dict) -> list[str]:
  return [
    _shortcut_paragraph(summaries, within, shortcut, decorrelated),
    _audit_paragraph(audits),
    _remedy_paragraph(summaries, between, decorrelated, remedies),
    _saliency_paragraph(summaries, between, shortcut, decorrelated),
    "Against the workflow's claim. The tank story as usually told (a network that learned the weather instead of "
    "the tanks) is, as far as anyone has traced it, an anecdote without a recorded experiment; here it is planted, "
    "so that the model CAN learn it is by construction, and what is measured is how much: all of it at 100%, "
    "a part at 90-95%, where the conflicting photos force the digit to be learned too. The audit flags the "
    "association only because the light is a recorded column: an attribute nobody wrote down is invisible to its "
    "bias check, and its input-shift check compares train and test pixel statistics, which the light does not move "
    "here (half of each split is shot by day). A model's errors on a counterfactual test (the same object, the "
    "attribute changed) are what finds an unrecorded shortcut.",
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
