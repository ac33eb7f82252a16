"""The words of the report, written from the numbers (a rerun with other numbers says what those show).

The claims tested: "annotators following different conventions for overlapping objects disagree, and IoU with
Hungarian matching measures it" (the agreement tables) and "inconsistent labels act as noise" (a model trained
on randomly mixed conventions against one trained on the consistent labels plus zero-mean noise of the same size).
"""

from __future__ import annotations

from experiments.annotation_consistency import annotators, scenes


def _mean(s: dict) -> float | None:
  return s["mean"]


def _f(v, digits: int = 3) -> str:
  return "-" if v is None else f"{v:.{digits}f}"


def _row(diffs: list[dict], metric: str, a: str, b: str) -> dict | None:
  return next((r for r in diffs if r["comparison"] == metric and r["a"] == a and r["b"] == b), None)


def _diff(row: dict | None) -> str:
  if row is None or row["mean"] is None:
    return "not measured"
  ci = row["ci95"]
  return f"{row['mean']:+.3f}" + (f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "") + f", {row['verdict']}"


def _vs_truth(agreement: dict) -> dict[str, dict]:
  return {c: agreement["pairs"][f"truth vs {c}"]["overall"] for c in annotators.CONVENTIONS}


def _shifts(s: dict) -> bool:
  """The model's boxes are offset from the truth's beyond its seeds' spread (its offset's CI excludes 0)."""
  ci = s["offset_px"]["ci95"]
  return ci is not None and (ci[0] > 0 or ci[1] < 0)


def _verdict(summaries: dict, row: dict | None) -> str:
  """What the mixed arm shows about 'inconsistent labels act as noise', from the IoU cost and the offsets."""
  mixed, noise = summaries.get(annotators.MIXED), summaries.get(annotators.NOISE)
  if row is None or row["mean"] is None or mixed is None or noise is None:
    return "unmeasured"
  cost = {"tie": "as much IoU as", "mixed better": "no more IoU than"}.get(row["verdict"], "more IoU than")
  off_m, off_n = mixed["offset_px"]["mean"], noise["offset_px"]["mean"]
  text = (
    f"mixed conventions cost {cost} noise of the same RMS, but the mixed model's boxes sit {off_m:+.2f} px outside "
    f"the truth per edge (noise: {off_n:+.2f} px)"
  )
  if _shifts(mixed) and abs(off_m) > abs(off_n):
    return text + ": inconsistent labels act as noise plus a bias toward the average convention"
  return text + ": here inconsistent labels act as noise"


def answer(summaries: dict, agreement: dict, diffs: list[dict]) -> str:
  truth = _vs_truth(agreement)
  f1 = {c: o["agreement"] for c, o in truth.items()}
  worst, best = min(f1, key=f1.get), max(f1, key=f1.get)
  models = {k: _mean(v["iou_truth"]) for k, v in summaries.items() if _mean(v["iou_truth"]) is not None}
  lo, hi = min(models, key=models.get), max(models, key=models.get)
  line = (
    f"The five conventions for overlapping objects agree with the true boxes at F1 {f1[worst]:.2f} ({worst}) to "
    f"{f1[best]:.2f} ({best}) (`jaxflow agree`: Hungarian matching, IoU >= 0.5); a box regressor learns its "
    f"annotator's convention: test IoU with the truth {models[lo]:.3f} ({lo}) to {models[hi]:.3f} ({hi})"
  )
  row = _row(diffs, "iou_truth", annotators.MIXED, annotators.NOISE)
  if row is not None:
    line += (
      f"; labels mixed from all five reach {models.get(annotators.MIXED, float('nan')):.3f} against "
      f"{models.get(annotators.NOISE, float('nan')):.3f} for tight labels plus zero-mean noise of the same RMS "
      f"(paired {_diff(row)}): {_verdict(summaries, row)}"
    )
  return line + "."


def setup(s, built: dict, args, quick_overrides, epochs: int) -> list[str]:
  n_train, n_test = int(built["train"].sum()), int(built["test"].sum())
  lines = [
    f"Scenes (scenes.py): {len(s)} generated {scenes.SIZE}x{scenes.SIZE} grey images ({n_train} train / {n_test} "
    f"test), each a car (bright) and a crate (grey), 3-D cuboids 5.5-13 units from a pinhole camera (focal "
    f"{scenes.FOCAL:g} px), drawn as the convex hulls of their projected corners (`project_box3d`), the nearer over "
    f"the farther; the two overlap in {s.overlap.mean():.0%} of the scenes, the car is the hidden one in "
    f"{(~s.car_in_front).mean():.0%}, and a hidden object keeps {s.visible_share.mean():.0%} of its pixels on average.",
    "Truth: each object's amodal tight box (its whole silhouette, occluded part included), in pixels.",
    f"Annotators (annotators.py), each on every scene, edges snapped to the pixel grid after N(0, "
    f"{annotators.JITTER}) px of jitter: tight (the truth's convention); loose (+{annotators.MARGIN:g} px each side); "
    "visible (the hidden object's visible part); merged (one box around both objects where they overlap, labelled "
    f"car); 3-D (a 3-D box with {annotators.DEPTH_ERROR:.0%} depth, {annotators.YAW_ERROR} rad yaw and "
    f"{annotators.SIZE_ERROR:.0%} size errors, projected with `project_box3d`).",
    "Label sets for the car: the five conventions; `mixed` (each scene's label from one of the five at random); "
    "`tight + noise` (tight plus zero-mean Gaussian noise per coordinate with the RMS of mixed - tight on the "
    "training scenes).",
    "Agreement: the test scenes' COCO files (both objects), compared pair by pair with `jaxflow.agreement` (the "
    "`jaxflow agree` command): Hungarian matching by IoU per image and category, matched at IoU >= 0.5.",
    "Model: configs/digits_mlp.py as a regression (`problem.kind=regression`, MSE, `train.monitor=eval/mae`) on an "
    "NPZ with one row per scene and coordinate: the image's 576 pixels plus a one-hot of the coordinate asked for "
    "(jaxflow's regression has one output), label the coordinate in whole pixels; MLP 128-128, no dropout, head bias "
    f"starting at 12 px, Adam 3e-3 cosine, batch 128, {epochs} epochs (400 steps), inputs standardized.",
    f"Seeds: {args.seeds} per arm through `jaxflow.seeds(vary='all', mode='vmap')`, the same seed indices in every "
    "arm (paired); each seed's model exported (`jaxflow.export`, latest checkpoint) and loaded (`jaxflow.load_model`) "
    "to predict the test boxes.",
  ]
  if args.quick:
    lines.append(f"Quick: arms {', '.join(built['npz'])}, overrides {' '.join(quick_overrides)}.")
  return lines


def paragraphs(summaries: dict, agreement: dict, diffs: list[dict]) -> list[str]:
  truth = _vs_truth(agreement)
  label_iou = agreement["label_iou_truth"]
  out = [
    "**What to do when objects overlap: the conventions disagree, and IoU shows how.** Against the true amodal "
    "boxes, "
    + "; ".join(
      f"{c}: F1 {o['agreement']:.2f}, matched mean IoU {_f(o['mean_iou'], 2)}, car labels' mean IoU {label_iou[c]:.2f}"
      for c, o in truth.items()
    )
    + ". A convention is not noise around the truth: loose boxes are all larger, visible boxes of hidden objects "
    "smaller, merged boxes cover two objects and leave the crate without a box (its unmatched boxes pull F1 down), "
    "3-D projections scatter with the depth error. The agreement matrix (plot) is the consistency measurement a "
    "labelling team can run with `jaxflow agree` before training anything.",
  ]
  models = {k: v for k, v in summaries.items()}
  gains = [f"{k} {_f(_mean(v['iou_truth']))} (labels {label_iou[k]:.3f})" for k, v in models.items() if k in label_iou]
  out.append(
    "**A model learns the convention it is shown.** Test IoU with the truth per training label set: "
    + ", ".join(gains)
    + ". Where the model beats its own labels, the labels' jitter averaged out over the training scenes; "
    "where it stays below, the convention's systematic offset is learned as if it were the truth."
  )
  row = _row(diffs, "iou_truth", annotators.MIXED, annotators.NOISE)
  cons = _row(diffs, "iou_consensus", annotators.MIXED, annotators.NOISE)
  if row is not None:
    offsets = agreement["label_offset_px"]
    out.append(
      "**Do inconsistent labels act as noise?** Mixed conventions against tight labels with zero-mean noise of the "
      f"same RMS, model IoU with the truth: {_diff(row)}; with the annotators' consensus (median box): {_diff(cons)}. "
      f"The label sets themselves: IoU with the truth {label_iou[annotators.MIXED]:.3f} "
      f"(mixed) vs {label_iou[annotators.NOISE]:.3f} (noise), offsets {offsets[annotators.MIXED]:+.2f} vs "
      f"{offsets[annotators.NOISE]:+.2f} px. A regressor trained with MSE learns the mean label: zero-mean noise "
      "averages away (its model comes back to the truth's size), a mix of conventions averages to the mean "
      f"convention, which is not the truth. So {_verdict(summaries, row)}. The remedy is a written convention "
      "(and a consensus rule for disagreements), not more labels of the same mix."
    )
  return out


def caveats(args) -> list[str]:
  out = [
    "Simulated annotators and scenes: the conventions' sizes (1 px margin, 6% depth error, ...) are choices; the "
    "ordering of the conventions follows from them, not from real annotators.",
    "jaxflow cannot train a multi-output regression (problem.output_dim is 1 for regression, NPZ labels are one "
    "integer per row), so the box is regressed as one model asked four times (a one-hot of the coordinate in the "
    "input); the labels are whole pixels (the annotators snap to the grid; the truth's boxes are whole pixels too).",
    "One set of scenes and one draw of the annotators' jitter for every seed: the seeds vary the model's "
    "initialization and data order, not the data, so the intervals are the training's spread only.",
    "A small MLP on raw pixels (800 training scenes, 400 steps) is far from a detector: its own error (MAE ~1.1 px, "
    "IoU ~0.6 with the truth even on tight labels) is larger than most conventions' differences, which compresses "
    "the gaps between arms; a better model would show them larger, not in another order (an untested expectation).",
  ]
  if args.quick:
    out.insert(0, "Quick run: 2 arms, a 16-unit MLP for 3 steps on 2 seeds: the numbers mean nothing.")
  return out
