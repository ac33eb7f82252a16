"""Annotation consistency: what overlapping objects do to box labels, how IoU measures it, and what a model trained
on each annotator's labels learns. Generated scenes (a car and a crate, 3-D boxes seen by a pinhole camera,
overlapping in ~96% of the scenes) are boxed by five simulated annotators with different conventions
(annotators.py); their COCO files are compared with `jaxflow.agreement` (Hungarian matching by IoU, the
user-facing `jaxflow agree`); a box regressor is trained on each label set and scored against the truth.

  python experiments/annotation_consistency/run.py            # full run: ~5-8 min on 2 shared CPU cores
  python experiments/annotation_consistency/run.py --quick    # seconds; the same outputs' structure

Every arm is configs/digits_mlp.py as a regression on an NPZ built here (data.py: one row per scene and box
coordinate), trained through `jaxflow.seeds(config, workdir, seeds=5, vary="all", mode="vmap")`; seed i of every
arm shares its streams (paired). Each seed's model is exported (`jaxflow.export`, checkpoint latest) and loaded
(`jaxflow.load_model`) to predict the test scenes' boxes. Writes report.md, results.json and PNGs into --out.
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

import jaxflow  # noqa: E402
from experiments import harness_extras  # noqa: E402
from experiments.annotation_consistency import annotators, data, figures, meaning  # noqa: E402
from experiments.annotation_consistency import scenes as scenes_lib  # noqa: E402
from experiments.common import report, stats, study  # noqa: E402

QUESTION = "What to do when objects overlap? How to measure labeling consistency? IoU"
CONFIG = "configs/digits_mlp.py"
SCENE_SEED, LABEL_SEED = 0, 1
N_TRAIN, N_TEST = 800, 300
QUICK_TRAIN_SCENES, QUICK_TEST = 60, 60
EPOCHS = 16  # 3200 rows / 128 = 25 steps an epoch: 400 steps
MODEL = ("model.widths=(128, 128)", "model.dropout_rate=0.0")
# The head's bias starts at the image's centre (12 px), not 0: the targets are pixel coordinates 0..24 and
# Adam's steps of ~3e-3 would take thousands of steps to walk a zero bias there.
HEAD = ("model.layer_inits=('head.bias=constant(12.0)',)",)
REGRESSION = ("problem.kind=regression", "train.monitor=eval/mae", "train.monitor_mode=min")
ARMS = (*annotators.CONVENTIONS, annotators.MIXED, annotators.NOISE)
QUICK_ARMS = (annotators.MIXED, annotators.NOISE)  # the study's key comparison; two arms keep it cheap
REFERENCE = "tight"
QUICK = (*harness_extras.QUICK_MLP, f"data.train_examples={harness_extras.QUICK_TRAIN}")


class Extract:
  """Per seed: the run's eval MAE, and its exported model's boxes on the test scenes scored three ways (IoU with
  the truth, with the annotators' consensus, with the labels it was trained on) and through `jaxflow.agreement`
  (the share of true cars it matches at IoU >= 0.5)."""

  def __init__(self, root: str, test_images: np.ndarray, truth: np.ndarray, vote: np.ndarray, truth_coco: str):
    self.root, self.rows, self.n = root, data.query_rows(test_images), len(test_images)
    self.truth, self.vote, self.truth_coco = truth, vote, truth_coco
    self.own: np.ndarray | None = None  # the arm's own test labels, set before each arm
    self.predictions: dict[str, np.ndarray] = {}  # seed 0's boxes per arm, for the figure

  def __call__(self, summary: dict, workdir: str) -> dict:
    out = workdir.rstrip("/") + "_export"
    jaxflow.export(workdir, out, checkpoint="latest")  # latest: the final epoch the summary reports
    values = jaxflow.load_model(out)(self.rows)["value"]
    boxes = data.boxes_from_rows(values, self.n)
    coco_path = data.write_coco(out + "_car.json", {"car": boxes})
    agreed = jaxflow.agreement(self.truth_coco, coco_path)["per_category"]["car"]
    return {
      "mae": summary["final"]["eval"]["mae"],
      "iou_truth": float(annotators.iou(boxes, self.truth).mean()),
      "iou_consensus": float(annotators.iou(boxes, self.vote).mean()),
      "iou_own": float(annotators.iou(boxes, self.own).mean()),
      "offset_px": float(annotators.outward(boxes, self.truth).mean()),
      "matched_truth": agreed["matched_share_a"],
      "boxes": boxes,
    }


def build(root: str, quick: bool) -> dict:
  """Scenes, the annotators' labels, one NPZ per label set, the test scenes' COCO files."""
  n_train, n_test = (QUICK_TRAIN_SCENES, QUICK_TEST) if quick else (N_TRAIN, N_TEST)
  s = scenes_lib.generate(n_train + n_test, SCENE_SEED)
  train = np.arange(len(s)) < n_train
  boxes, car = annotators.label_sets(s, train, LABEL_SEED)
  test = ~train
  coco = {"truth": data.write_coco(os.path.join(root, "coco", "truth.json"), {k: s.full[k][test] for k in s.full})}
  for c in annotators.CONVENTIONS:
    coco[c] = data.write_coco(os.path.join(root, "coco", f"{c}.json"), {k: v[test] for k, v in boxes[c].items()})
  npz, rows = {}, {}
  for name in ARMS if not quick else QUICK_ARMS:
    npz[name] = os.path.join(root, "data", "".join(ch if ch.isalnum() else "_" for ch in name) + ".npz")
    rows[name] = data.build_npz(npz[name], s.images, car[name], train)
  return {"scenes": s, "train": train, "test": test, "boxes": boxes, "car": car, "coco": coco, "npz": npz, "rows": rows}


def agreement_tables(built: dict, quick: bool) -> dict:
  """Through `jaxflow.agreement` on the COCO files: each convention against the truth and (but in a quick run)
  against each other."""
  names = ["truth", *annotators.CONVENTIONS]
  pairs = {}
  for i, a in enumerate(names[:1] if quick else names):
    for b in names[i + 1 :]:
      r = jaxflow.agreement(built["coco"][a], built["coco"][b])
      pairs[f"{a} vs {b}"] = {"overall": r["overall"], "per_category": r["per_category"]}
  test, truth = built["test"], built["scenes"].full["car"][built["test"]]
  label_iou = {name: float(annotators.iou(built["car"][name][test], truth).mean()) for name in ARMS}
  offset = {name: float(annotators.outward(built["car"][name][test], truth).mean()) for name in ARMS}
  return {"names": names, "pairs": pairs, "label_iou_truth": label_iou, "label_offset_px": offset}


def run_arms(session: study.Session, built: dict, extract: Extract, quick: bool) -> dict:
  results = {}
  for name, npz in built["npz"].items():
    dataset = (f"data.name=npz:{npz}", "data.input_feature=features", *REGRESSION)
    budget = QUICK if quick else (*MODEL, f"train.epochs={EPOCHS}")
    arm = study.Arm(name, CONFIG, (*dataset, *HEAD, *budget), mode="vmap")
    extract.own = built["car"][name][built["test"]]
    results[name] = session.run(arm, extract)
    extract.predictions[name] = next((row["boxes"] for row in results[name].per_seed if row), None)
    for row in results[name].per_seed:
      if row:
        row.pop("boxes")
  return results


METRICS = ("iou_truth", "iou_consensus", "iou_own", "matched_truth", "offset_px", "mae")


def differences(results: dict, resolution: float) -> list[dict]:
  """IoU with the truth, paired by seed: each arm - tight, and mixed - tight + noise (bias or noise?)."""
  reference = results.get(REFERENCE)
  rows = [
    stats.compare(
      "iou_truth", name, r.values("iou_truth"), REFERENCE, reference.values("iou_truth"), resolution=resolution
    )
    for name, r in results.items()
    if reference is not None and name != REFERENCE
  ]
  if annotators.MIXED in results and annotators.NOISE in results:
    for metric in ("iou_truth", "iou_consensus"):
      rows.append(
        stats.compare(
          metric,
          annotators.MIXED,
          results[annotators.MIXED].values(metric),
          annotators.NOISE,
          results[annotators.NOISE].values(metric),
          resolution=resolution,
        )
      )
  return rows


def model_table(summaries: dict, agreement: dict) -> report.Table:
  label_iou, label_offset = agreement["label_iou_truth"], agreement["label_offset_px"]
  rows = [
    [name, f"{label_iou[name]:.3f}", f"{label_offset[name]:+.2f}", *(report.cell(s[m]) for m in METRICS)]
    for name, s in summaries.items()
  ]
  header = ["trained on", "labels: IoU with truth", "labels: offset (px)", "model: IoU with truth", "with consensus"]
  header += ["with own labels", "true cars matched (IoU >= 0.5)", "offset (px)", "eval MAE (px, own labels)"]
  note = (
    "Mean [95% t-CI] over seeds, on the test scenes. 'labels' columns: the label set itself against the true "
    "(amodal, tight) car box, the ceiling its annotator sets. Offset: how far the box edges lie outside the true "
    "box's, averaged over the four edges (+ larger, - smaller). 'matched' from `jaxflow.agreement` per category."
  )
  return report.Table("Box regressor trained on each label set, scored on the test scenes", header, rows, note)


def agreement_table(agreement: dict) -> report.Table:
  rows = []
  for pair, r in agreement["pairs"].items():
    o, car = r["overall"], r["per_category"].get("car", {})
    cells = [o["n_a"], o["n_b"], o["n_matched"], o["mean_iou"], o["agreement"], car.get("mean_iou_assigned")]
    rows.append([pair, *(str(v) if isinstance(v, int) else report.fmt(v) for v in cells)])
  header = ["A vs B", "boxes A", "boxes B", "matched (IoU >= 0.5)", "mean IoU (matched)", "agreement (F1)"]
  header += ["car: mean IoU of assigned pairs"]
  note = "`jaxflow.agreement` on the test scenes' COCO files (both objects; a box only matches its own category)."
  return report.Table("Annotators' agreement, pair by pair", header, rows, note)


def main(argv: list[str] | None = None) -> dict:
  args = study.parse_args(__file__, argv, description=__doc__.splitlines()[0])
  with study.session(args) as session:
    built = build(session.root, args.quick)
    agreement = agreement_tables(built, args.quick)
    s, test = built["scenes"], built["test"]
    truth = s.full["car"][test]
    vote = annotators.consensus({c: built["car"][c][test] for c in annotators.CONVENTIONS})
    extract = Extract(session.root, s.images[test], truth, vote, built["coco"]["truth"])
    results = run_arms(session, built, extract, args.quick)
    summaries = {name: {m: stats.mean_ci(r.values(m)) for m in METRICS} for name, r in results.items()}
    resolution = 1.0 / int(test.sum())  # one test scene's IoU moving by 1: the mean's smallest meaningful step
    diffs = differences(results, resolution)
    plot_files = figures.draw(args.out, s, built, agreement, summaries, extract.predictions)
    facts = {
      "title": "Annotation consistency: overlapping objects, annotator conventions, IoU agreement, label noise",
      "question": QUESTION,
      "answer": meaning.answer(summaries, agreement, diffs),
      "command": args.command,
      "quick": args.quick,
      "seeds": args.seeds,
      "setup": meaning.setup(s, built, args, QUICK, EPOCHS),
      "arms": {name: {**study.arm_facts(r), "data": built["rows"][name]} for name, r in results.items()},
      "differences": diffs,
      "plots": plot_files,
      "meaning": meaning.paragraphs(summaries, agreement, diffs),
      "caveats": meaning.caveats(args),
      "findings": {"models": summaries, "agreement": agreement, "resolution": resolution},
      "provenance": session.clock.finish(),
    }
  tables = [agreement_table(agreement), model_table(summaries, agreement)]
  diff_tables = [
    report.difference_table(
      "Model IoU with the truth, seed by seed", diffs, note=f"Resolution: 1/{int(test.sum())} test scenes."
    )
  ]
  shown = report.write(args.out, facts, tables, diff_tables)
  print(shown["answer"])
  return shown


if __name__ == "__main__":
  main()
