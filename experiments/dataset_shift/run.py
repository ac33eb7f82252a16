"""Dataset shift: exclusion and measurement bias. The digits MLP trained on clean images, tested as other cameras
measure them (blur, lower contrast, a brightness offset, lower resolution; three severities each), and trained
with one writing style per digit left out; the accuracy each loses, what augmentation and adaptation win back,
and whether the audit's shift statistic ranks the cameras the way the real drop does.

  python experiments/dataset_shift/run.py            # full run: 6.5 min on 2 shared cores (load 10; 222 s of CPU)
  python experiments/dataset_shift/run.py --quick    # seconds; the same outputs' structure

Every arm is configs/digits_mlp.py on an NPZ built here (experiments/dataset_shift/data.py; `data.name=npz:PATH`,
`data.group_feature=camera`): its test split holds the clean test images and each camera's copy of them as
groups, so one run per seed measures every camera. About the config's 330 optimizer steps per arm, through
`jaxflow.seeds(config, workdir, seeds=5, vary="all", mode="sequential")`; seed i of every arm shares its streams
(paired). The audit: `jaxflow.audit` of the clean training split against each camera's test split.
Writes report.md, results.json and PNG plots into --out (default results/ beside this file).
"""

from __future__ import annotations

import dataclasses
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import jaxflow  # noqa: E402
from experiments import harness_extras as kit  # noqa: E402
from experiments.common import report, stats, study  # noqa: E402
from experiments.dataset_shift import data, figures, meaning  # noqa: E402

QUESTION = (
  "Is there exclusion bias or measurement bias? (training data measured differently from the data at inference; "
  "a subgroup systematically excluded)"
)
CONFIG = "configs/digits_mlp.py"
STEPS, BATCH = 330, 128  # the config's own budget: 30 epochs of 11 steps (1437 // 128)
NPZ = ("data.input_feature=features", "data.label_feature=y", f"data.group_feature={data.GROUP}")
QUICK = (*kit.QUICK_MLP, f"data.train_examples={kit.QUICK_TRAIN}")
PHOTOMETRIC = ("contrast(0.25, 1.0)", "brightness(0.35)", "clip()")  # jaxflow's ops spanning the tested cameras
GEOMETRIC = ("rotate(degrees=15)", "zoom(0.9, 1.1)")  # other ways of drawing: slant and size


@dataclasses.dataclass(frozen=True)
class Condition:
  name: str
  spec: data.TrainSet
  augment: tuple[str, ...] = ()
  role: str = ""  # what the arm stands for, in the report's setup


BASELINE = "baseline"
EXCLUDED = "style excluded"
CONDITIONS = (
  Condition(BASELINE, data.TrainSet(), role="clean training images, every style"),
  Condition(EXCLUDED, data.TrainSet(keep_style=0.0), role="exclusion bias: the unusual style of every digit left out"),
  Condition(
    "random removal",
    data.TrainSet(drop_random=True),
    role="control: as many training images removed, at random (the exclusion's size without its system)",
  ),
  Condition(
    "excluded + geometric aug",
    data.TrainSet(keep_style=0.0),
    GEOMETRIC,
    role="remedy for exclusion by augmentation (jaxflow data.augment: rotate, zoom)",
  ),
  Condition(
    "excluded + 10% of style",
    data.TrainSet(keep_style=0.1),
    role="remedy for exclusion by adaptation: a small sample of the style collected (10% of its images)",
  ),
  Condition(
    "photometric aug",
    data.TrainSet(),
    PHOTOMETRIC,
    role="remedy for measurement bias by augmentation (jaxflow data.augment: contrast, brightness, clip)",
  ),
  Condition(
    "camera aug",
    data.TrainSet(camera_copies=1),
    role="augmentation by every camera kind: each image written again as a random camera (blur and resolution "
    "too, which jaxflow's augment ops lack; written into the NPZ)",
  ),
  Condition(
    "target sample",
    data.TrainSet(target_sample=20),
    role="adaptation by a small labelled sample of the deployment cameras: 20 training images re-measured by each",
  ),
  Condition(
    "per-image standardized",
    data.TrainSet(standardize=True),
    role="adaptation of the input: every image (train and test) standardized on its own",
  ),
)
QUICK_CONDITIONS = (BASELINE, EXCLUDED)
QUICK_AUDIT = "offset_0.35"
SHIFT_REMEDIES = ("photometric aug", "camera aug", "target sample", "per-image standardized")
STYLE_ARMS = (EXCLUDED, "random removal", "excluded + geometric aug", "excluded + 10% of style")


def extract(summary: dict, workdir: str) -> dict:
  """Per seed: each camera's accuracy, the clean test set's (both style groups, weighted by their counts) and
  each style group's."""
  del workdir
  final = summary["final"]["eval"]
  row = {s.name: final[f"group/{s.name}/accuracy"] for s in data.SHIFTS if f"group/{s.name}/accuracy" in final}
  counts = {g: final[f"group/{g}/count"] for g in (data.CLEAN_SUB, data.CLEAN_REST)}
  row["style"], row["rest"] = final[f"group/{data.CLEAN_SUB}/accuracy"], final[f"group/{data.CLEAN_REST}/accuracy"]
  row["clean"] = (row["style"] * counts[data.CLEAN_SUB] + row["rest"] * counts[data.CLEAN_REST]) / sum(counts.values())
  return row


def overrides(npz: str, rows: int, augment: tuple[str, ...], quick: bool) -> tuple[str, ...]:
  """The NPZ and its groups; epochs giving about the config's 330 steps on `rows` training rows."""
  aug = (f"data.augment=({', '.join(repr(a) for a in augment)},)",) if augment else ()
  steps = QUICK if quick else (kit.epochs_override(rows, STEPS, BATCH),)
  return (f"data.name=npz:{npz}", *NPZ, *aug, *steps)


def run_arms(session: study.Session, quick: bool, shifts) -> tuple[dict, dict]:
  """Builds each condition's NPZ in the session's workdir and trains it; (results, data counts) by arm."""
  results, counts = {}, {}
  for c in CONDITIONS:
    if quick and c.name not in QUICK_CONDITIONS:
      continue
    slug = "".join(ch if ch.isalnum() else "_" for ch in c.name)
    npz = os.path.join(session.root, "data", f"{slug}.npz")
    counts[c.name] = data.build(npz, c.spec, shifts)
    arm = study.Arm(c.name, CONFIG, overrides(npz, counts[c.name]["train_rows"], c.augment, quick), mode="sequential")
    results[c.name] = session.run(arm, extract)
  return results, counts


def run_audits(session: study.Session, shifts, quick: bool) -> dict:
  """The audit's input-shift statistic (KS of per-example means, Cohen's d, flag) of the clean training split
  against each camera's test images, and against the clean test images (the statistic's noise floor); a quick run
  audits one camera."""
  npz = os.path.join(session.root, "data", "audit.npz")
  splits = data.audit_npz(npz, shifts)
  out = {}
  for name, split in splits.items():
    if quick and name != QUICK_AUDIT:  # an audit costs ~3 s of CPU, 80% of it the PNGs it always writes
      continue
    config = session.config(study.Arm("audit", CONFIG, (f"data.name=npz:{npz}", *NPZ[:2], f"data.eval_split={split}")))
    found = jaxflow.audit(config, os.path.join(session.root, "audit", split))["shift"]["input_shift"]
    out[name] = {k: found[k] for k in ("ks_statistic", "ks_p_value", "cohens_d", "mean_difference", "flagged")}
  return out


def summarize(results: dict, shifts) -> dict:
  """Per arm and metric (clean, style, rest, each camera): mean and 95% CI over seeds."""
  keys = ("clean", "style", "rest", *(s.name for s in shifts))
  return {name: {k: stats.mean_ci(r.values(k)) for k in keys} for name, r in results.items()}


def differences(results: dict, resolution: dict, shifts) -> dict[str, list[dict]]:
  """Paired rows by seed: each camera's drop (baseline clean - baseline camera); the exclusion and its remedies on
  the style's images; each shift remedy against the baseline on every camera (and on clean images)."""
  base = results[BASELINE]
  cam = resolution["camera"]
  drops = [
    stats.compare(s.name, "clean", base.values("clean"), s.name, base.values(s.name), resolution=cam) for s in shifts
  ]
  style = []
  for name in STYLE_ARMS:
    if name not in results:
      continue
    ref = BASELINE if name in (EXCLUDED, "random removal") else EXCLUDED
    for key in ("style", "rest"):
      style.append(
        stats.compare(key, name, results[name].values(key), ref, results[ref].values(key), resolution=resolution[key])
      )
  remedies = [
    stats.compare(key, name, results[name].values(key), BASELINE, base.values(key), resolution=cam)
    for name in SHIFT_REMEDIES
    if name in results
    for key in ("clean", *(s.name for s in shifts))
  ]
  return {"drops": drops, "style": style, "remedies": remedies}


def recovery(summaries: dict, arms, *, reference: tuple[str, str | None], low_arm: str, metrics) -> dict:
  """Share of the drop won back, from the means: (remedy - low) / (top - low) per metric, where low is `low_arm`'s
  mean on the metric and top is `reference` = (arm, metric; None: the same metric)'s. Only for `metrics` whose
  drop is resolved (the caller's list): a ratio over a tie is noise divided by noise."""
  out = {}
  for name in (a for a in arms if a in summaries):
    out[name] = {}
    for m in metrics:
      top = summaries[reference[0]][reference[1] or m]["mean"]
      low, got = summaries[low_arm][m]["mean"], summaries[name][m]["mean"]
      out[name][m] = (got - low) / (top - low) if top - low > 0 else None
  return out


def pooled_recovery(summaries: dict, resolved: list[str]) -> dict:
  """Per remedy, per camera kind and over all: the accuracy won back summed over the cameras with a resolved drop,
  divided by the summed drop (one number per kind that a small, noisy drop cannot blow up)."""
  base = summaries[BASELINE]
  out = {}
  for name in (a for a in SHIFT_REMEDIES if a in summaries):
    out[name] = {}
    for group in (*data.KINDS, "all"):
      names = [s.name for s in data.tested(resolved) if group in ("all", s.kind)]
      drop = sum(base["clean"]["mean"] - base[n]["mean"] for n in names)
      gain = sum(summaries[name][n]["mean"] - base[n]["mean"] for n in names)
      out[name][group] = gain / drop if names and drop > 0 else None
  return out


def main(argv: list[str] | None = None) -> dict:
  args = study.parse_args(__file__, argv, description=__doc__.splitlines()[0])
  with study.session(args) as session:
    shifts = data.QUICK_SHIFTS if args.quick else data.SHIFTS
    results, counts = run_arms(session, args.quick, shifts)
    audits = run_audits(session, shifts, args.quick)
    c = counts[BASELINE]
    resolution = {
      "camera": 1 / c["test_per_camera"],
      "style": 1 / c["test_style"],
      "rest": 1 / c["test_rest"],
    }
    summaries = summarize(results, shifts)
    rows = differences(results, resolution, shifts)
    resolved = [r["b"] for r in rows["drops"] if r["verdict"] != "tie"]
    style_lost = [r["a"] for r in rows["style"] if r["comparison"] == "style" and r["verdict"] != "tie"]
    recovered = {
      "cameras": recovery(summaries, SHIFT_REMEDIES, reference=(BASELINE, "clean"), low_arm=BASELINE, metrics=resolved),
      "pooled": pooled_recovery(summaries, resolved),
      "style": recovery(
        summaries,
        STYLE_ARMS[2:],
        reference=(BASELINE, None),
        low_arm=EXCLUDED,
        metrics=("style",) if EXCLUDED in style_lost else (),
      ),
    }
    findings = {"summaries": summaries, "audit": audits, "recovery": recovered, "resolution": resolution}
    findings["style_share"] = c["test_style"] / (c["test_style"] + c["test_rest"])
    findings["ranking"] = meaning.ranking(summaries[BASELINE], audits)
    plot_files = figures.draw(args.out, summaries, audits, BASELINE)
    facts = {
      "title": "Dataset shift: measurement bias (another camera) and exclusion bias (a style left out)",
      "question": QUESTION,
      "answer": meaning.answer(findings, rows, BASELINE, EXCLUDED),
      "command": args.command,
      "quick": args.quick,
      "seeds": args.seeds,
      "setup": meaning.setup(CONDITIONS, counts, args, QUICK, shifts),
      "arms": {name: {**study.arm_facts(r), "data": counts[name]} for name, r in results.items()},
      "differences": [r for group in rows.values() for r in group],
      "plots": plot_files,
      "meaning": meaning.paragraphs(findings, rows, BASELINE, EXCLUDED),
      "caveats": meaning.caveats(args),
      "findings": findings,
      "provenance": session.clock.finish(),
    }
  tables = meaning.tables(findings, counts, BASELINE, EXCLUDED)
  diff_tables = [
    report.difference_table("The drop per camera: baseline clean - baseline on the camera, by seed", rows["drops"]),
    report.difference_table(
      "Exclusion: each arm - its reference on the style's and the rest's clean test images",
      rows["style"],
      note=f"Reference: {BASELINE} for '{EXCLUDED}' and 'random removal', '{EXCLUDED}' for its remedies.",
    ),
    report.difference_table(f"Measurement-bias remedies - {BASELINE}, per camera", rows["remedies"]),
  ]
  shown = report.write(args.out, facts, tables, diff_tables)
  print(shown["answer"])
  return shown


if __name__ == "__main__":
  main()
