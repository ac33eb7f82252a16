"""Interpretability: what jaxflow explain shows of a trained digits CNN (kernel pictures, activation maps, the four
saliency methods), whether each method passes the model-randomization sanity check (Adebayo et al. 2018), and
whether saliency reveals the sample_bias study's planted shortcut (the day light of the tank story).

  python experiments/interpretability/run.py            # full run: ~8-15 min on 2 shared CPU cores
  python experiments/interpretability/run.py --quick    # seconds; the same outputs' structure

Arms, each trained through `jaxflow.seeds(config, workdir, seeds=5, vary="all", mode="sequential")` (seed i of
every arm shares its streams: paired): a small configs/digits_cnn.py on the 10 digits, explained per seed by
`jaxflow.explain` (its report.json's randomization rank correlations per method); the same CNN on the sample_bias
study's binary tank task with the light following the label in every training photo (the shortcut) and with the
light independent of it (decorrelated), the NPZ built by importing experiments/sample_bias/data.py, each seed's
four saliency maps measured through `jaxflow.export` (experiments/interpretability/attribution.py).
"""

from __future__ import annotations

import json
import os
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import jaxflow  # noqa: E402
from experiments import harness_extras  # noqa: E402
from experiments.common import report, stats, study  # noqa: E402
from experiments.interpretability import attribution, figures, meaning  # noqa: E402
from experiments.sample_bias import data, saliency  # noqa: E402

QUESTION = "how can we try to overcome the black box?"
CONFIG = "configs/digits_cnn.py"
# Small and few epochs: XLA:CPU's conv gradients are slow (../shared/PITFALLS.md). 15 epochs of 22 steps.
MODEL = ("model.conv_features=(8, 16)", "model.widths=(32,)", "train.epochs=15")
QUICK = (*harness_extras.QUICK_CNN, f"data.train_examples={harness_extras.QUICK_TRAIN}")
METHODS = attribution.METHODS
CNN, SHORTCUT, DECORRELATED = "digits CNN", "shortcut (100% light = label)", "decorrelated (50%)"
LIGHTING = {SHORTCUT: data.Lighting(1.0), DECORRELATED: data.Lighting(0.5)}
PASS_BELOW = 0.5  # a method passes the randomization check when its mean rank correlation's CI lies below this
# Per run: examples explain explains; test digits (each by day and night), SmoothGrad samples, IG steps measured.
FULL = {"examples": 16, "images": 100, "samples": 8, "ig_steps": 16}
QUICK_SIZES = {"examples": 2, "images": 4, "samples": 2, "ig_steps": 2}
NOISE_SEED = 0  # SmoothGrad's noise: the same draw for every run, so the arms' maps differ by the model alone


def explain_into(session: study.Session, arm: str, workdir: str, examples: int, latest: bool = False) -> dict:
  """jaxflow.explain of one seed's run into session.root/explain/<arm>/<seed>; returns its report.json.
  `latest`: explain reads the best checkpoint (by eval accuracy, here the counterfactual test, which picks an
  early epoch of a shortcut model); the run's checkpoints/best is removed first, so it falls back to the latest,
  the parameters whose accuracies and maps the report gives."""
  if latest:
    shutil.rmtree(os.path.join(workdir, "checkpoints", "best"), ignore_errors=True)
  slug = "".join(c if c.isalnum() else "_" for c in arm)
  out = os.path.join(session.root, "explain", slug, os.path.basename(os.path.normpath(workdir)))
  jaxflow.explain(workdir, examples=examples, out=out)
  with open(os.path.join(out, "report.json")) as f:
    return {"out": out, **json.load(f)}


def measured(workdir: str, quick: bool) -> bool:
  """Whether this seed's maps are measured: every seed, or (quick) seed 0 alone, each explain or export of a run
  costing seconds of compiling (the exported program holds the weights as constants: one compile per run)."""
  return not quick or os.path.basename(os.path.normpath(workdir)).endswith("000")


def values(r: study.ArmResult, key: str) -> list:
  """The key's per-seed values; a seed that completed without measuring it (quick: seed 0 only) is left out
  rather than counted as failed."""
  return [None if row is None else row[key] for row in r.per_seed if row is None or key in row]


def cnn_extractor(session: study.Session, sizes: dict, quick: bool):
  """Per seed of the digits CNN: test accuracy and, from explain's report.json, each method's mean rank
  correlation between the trained and the re-initialized model's |saliency|, over all pixels and on the ink."""

  def extract(summary: dict, workdir: str) -> dict:
    if not measured(workdir, quick):
      return {"accuracy": summary["final"]["eval"]["accuracy"]}
    explained = explain_into(session, CNN, workdir, sizes["examples"])
    row = {"accuracy": summary["final"]["eval"]["accuracy"], "explain_out": explained["out"]}
    for method, r in explained["sanity"]["model_randomization"].items():
      row[f"{method}/rank_correlation"] = r["mean"]
      row[f"{method}/rank_correlation_ink"] = r.get("support_mean")
    row["ig_completeness_passed"] = explained["sanity"]["ig_completeness"]["shown"]["passed"]
    return row

  return extract


def shortcut_extractor(session: study.Session, arm: str, sizes: dict, quick: bool):
  """Per seed of a tank-task arm: accuracy with the light as in the shortcut's training (aligned) and reversed
  (conflicting), and each method's share of |attribution| on the background (attribution.measure)."""

  def extract(summary: dict, workdir: str) -> dict:
    final = summary["final"]["eval"]
    row = {
      "aligned": final[f"group/{data.ALIGNED}/accuracy"],
      "conflicting": final[f"group/{data.CONFLICTING}/accuracy"],
      "accuracy": final["accuracy"],
    }
    if not measured(workdir, quick):
      return row
    out = saliency.export_path(session.root, arm, workdir)  # sample_bias's: a fresh export folder per run
    budget = {k: sizes[k] for k in ("images", "samples", "ig_steps")}
    row.update(attribution.measure(workdir, out, **budget, seed=NOISE_SEED))
    return row

  return extract


def run_arms(session: study.Session, quick: bool) -> tuple[dict, dict]:
  """Trains the three arms (the tank-task NPZs built first); returns (results by arm, data counts by arm)."""
  sizes = QUICK_SIZES if quick else FULL
  extra = QUICK if quick else MODEL
  results = {CNN: session.run(study.Arm(CNN, CONFIG, extra, mode="sequential"), cnn_extractor(session, sizes, quick))}
  counts = {}
  for name, lighting in LIGHTING.items():
    npz = os.path.join(session.root, "data", f"{name.split()[0]}.npz")
    counts[name] = data.build(npz, lighting)
    dataset = (
      f"data.name=npz:{npz}",
      "data.input_feature=features",
      "data.standardize=False",
      f"data.group_feature={data.BIAS}",
    )
    arm = study.Arm(name, CONFIG, (*dataset, *extra), mode="sequential")
    results[name] = session.run(arm, shortcut_extractor(session, name, sizes, quick))
  return results, counts


def summarize(results: dict) -> dict:
  """{arm: {key: stats.mean_ci}} for every numeric per-seed key."""
  out = {}
  for name, r in results.items():
    keys = [k for k, v in (next((row for row in r.per_seed if row), None) or {}).items() if isinstance(v, float)]
    out[name] = {k: stats.mean_ci(values(r, k)) for k in keys}
  return out


def differences(results: dict) -> tuple[list[dict], list[dict]]:
  """(the randomization check: each method's rank correlation against the vanilla gradient's, seed by seed;
  the shortcut: each method's background share and the accuracies, shortcut arm - decorrelated arm)."""
  cnn = results[CNN]
  sanity = []
  for support in ("rank_correlation", "rank_correlation_ink"):
    for method in METHODS[1:]:
      sanity.append(
        stats.compare(
          support.replace("_", " "),
          method,
          values(cnn, f"{method}/{support}"),
          "vanilla_gradient",
          values(cnn, f"vanilla_gradient/{support}"),
          resolution=None,
          higher_is_better=False,
        )
      )
  a, b = results[SHORTCUT], results[DECORRELATED]
  shortcut = [
    stats.compare(f"{method} {rows}", SHORTCUT, values(a, key), DECORRELATED, values(b, key), resolution=None)
    for method in METHODS
    for rows, key in (
      ("background share", f"{method}/background_share"),
      ("day rows", f"{method}/background_share_day"),
    )
  ]
  res = stats.accuracy_resolution(360)
  for key in ("aligned", "conflicting"):
    shortcut.append(
      stats.compare(f"{key} accuracy", SHORTCUT, a.values(key), DECORRELATED, b.values(key), resolution=res)
    )
  return sanity, shortcut


def sanity_table(summaries: dict) -> report.Table:
  s = summaries[CNN]
  rows = []
  for method in METHODS:
    overall = s[f"{method}/rank_correlation"]
    ci = overall["ci95"]
    passed = "yes" if ci is not None and ci[1] < PASS_BELOW else "no"
    rows.append(
      [attribution.METHOD_NAMES[method], report.cell(overall), report.cell(s[f"{method}/rank_correlation_ink"]), passed]
    )
  header = [
    "method",
    "rank correlation, all pixels",
    "rank correlation, pixels with ink",
    f"passes (CI < {PASS_BELOW})",
  ]
  note = (
    "Mean [95% t-CI] over seeds of explain's per-example Spearman correlation between |saliency| of the trained "
    "model and of the same architecture re-initialized (report.json sanity.model_randomization), mean over the "
    f"explained examples. Test accuracy of the explained CNN: {report.cell(s['accuracy'])}."
  )
  return report.Table(
    "Model randomization (Adebayo et al. 2018): trained vs re-initialized weights", header, rows, note
  )


def shortcut_tables(summaries: dict) -> list[report.Table]:
  a, b = summaries[SHORTCUT], summaries[DECORRELATED]
  acc_rows = [
    [name, report.cell(s["aligned"]), report.cell(s["conflicting"]), report.cell(s["accuracy"])]
    for name, s in ((SHORTCUT, a), (DECORRELATED, b))
  ]
  acc = report.Table(
    "Tank task: test accuracy of the CNN by the test photos' light",
    ["arm", "light as in the shortcut's training", "light reversed", "light independent of label"],
    acc_rows,
    "Mean [95% t-CI] over seeds on the 360 test digits, each by day and by night (sample_bias's counterfactual test).",
  )
  rows = [
    [
      attribution.METHOD_NAMES[m],
      report.cell(a[f"{m}/background_share"]),
      report.cell(b[f"{m}/background_share"]),
      report.cell(a[f"{m}/background_share_day"]),
      report.cell(b[f"{m}/background_share_day"]),
    ]
    for m in METHODS
  ]
  header = [
    "method",
    f"{SHORTCUT}: all rows",
    f"{DECORRELATED}: all rows",
    f"{SHORTCUT}: day rows",
    f"{DECORRELATED}: day rows",
  ]
  note = (
    f"Share of sum |attribution| on background pixels (no ink in the unlit digit: "
    f"{report.fmt(a['background_pixels']['mean'])} of all pixels, what an even map gets), mean over the measured "
    "test rows, mean [95% t-CI] over seeds. Gradient x input and IG from a black baseline are 0 on a night photo's "
    "background (input 0) by construction: their day rows are the fair comparison."
  )
  return [
    acc,
    report.Table(
      "Where the tank-task CNN looks: saliency mass on the background (shortcut pixels)", header, rows, note
    ),
  ]


def pictures(results: dict, out: str, quick: bool) -> list[tuple[str, str]]:
  """explain's pictures of seed 0 of the digits CNN (and, in the full run, of the two tank-task arms) copied
  into `out`."""
  shown = []
  where = results[CNN].per_seed[0]["explain_out"]
  chosen = [
    ("kernels", "first conv layer's 3x3 kernels"),
    ("activations_conv_0", "activation maps of conv_0"),
    ("activations_conv_1", "activation maps of conv_1"),
    ("saliency", "the four saliency methods, trained model"),
    ("saliency_randomized", "the four saliency methods, re-initialized model"),
    ("sanity", "explain's sanity checks"),
  ]
  os.makedirs(out, exist_ok=True)
  for stem, title in chosen:
    if os.path.exists(os.path.join(where, f"{stem}.png")):
      shutil.copyfile(os.path.join(where, f"{stem}.png"), os.path.join(out, f"explain_cnn_{stem}.png"))
      shown.append((f"jaxflow explain, seed 0 of the digits CNN: {title}", f"explain_cnn_{stem}.png"))
  return shown


def shortcut_pictures(session: study.Session, results: dict, out: str) -> tuple[list[tuple[str, str]], dict]:
  """explain's saliency.png of seed 0 of the shortcut and the decorrelated arm (the latest checkpoint), and per
  arm its explained examples (test row, label, prediction, light: even rows are the day copies)."""
  shown, examples = [], {}
  for name, stem in ((SHORTCUT, "explain_shortcut"), (DECORRELATED, "explain_decorrelated")):
    explained = explain_into(session, name, results[name].workdirs[0], 8, latest=True)
    shutil.copyfile(os.path.join(explained["out"], "saliency.png"), os.path.join(out, f"{stem}.png"))
    shown.append((f"jaxflow explain, seed 0 of {name}: saliency of the predicted class", f"{stem}.png"))
    examples[name] = [
      {**{k: e[k] for k in ("index", "label", "prediction")}, "light": data.DAY if e["index"] % 2 == 0 else data.NIGHT}
      for e in explained["examples"]
    ]
  return shown, examples


def main(argv: list[str] | None = None) -> dict:
  args = study.parse_args(__file__, argv, description=__doc__.splitlines()[0])
  with study.session(args) as session:
    results, counts = run_arms(session, args.quick)
    summaries = summarize(results)
    sanity, shortcut = differences(results)
    plot_files = figures.draw(args.out, summaries, results, (SHORTCUT, DECORRELATED), PASS_BELOW)
    plot_files += pictures(results, args.out, args.quick)
    examples = {}
    if not args.quick:
      shown, examples = shortcut_pictures(session, results, args.out)
      plot_files += shown
    arms = {name: {**study.arm_facts(r), "data": counts.get(name)} for name, r in results.items()}
    for arm in arms.values():
      arm["per_seed"] = [
        None if row is None else {k: v for k, v in row.items() if k != "explain_out"} for row in arm["per_seed"]
      ]
    names = (CNN, SHORTCUT, DECORRELATED)
    facts = {
      "title": "Interpretability: looking into the black box",
      "question": QUESTION,
      "answer": meaning.answer(summaries, sanity, shortcut, names, PASS_BELOW),
      "command": args.command,
      "quick": args.quick,
      "seeds": args.seeds,
      "setup": meaning.setup(args, MODEL, QUICK, QUICK_SIZES if args.quick else FULL, names),
      "arms": arms,
      "differences": sanity + shortcut,
      "plots": plot_files,
      "meaning": meaning.paragraphs(summaries, sanity, shortcut, names, PASS_BELOW, examples),
      "caveats": meaning.caveats(args),
      "findings": {**summaries, "explained_tank_examples": examples},
      "provenance": session.clock.finish(),
    }
  tables = [sanity_table(summaries), *shortcut_tables(summaries)]
  diff_tables = [
    report.difference_table("Randomization check: each method's rank correlation - the vanilla gradient's", sanity),
    report.difference_table(
      f"Shortcut: {SHORTCUT} - {DECORRELATED}, seed by seed",
      shortcut,
      note="For the background shares 'better' means higher: more saliency mass on the shortcut pixels.",
    ),
  ]
  shown = report.write(args.out, facts, tables, diff_tables)
  print(shown["answer"])
  return shown


if __name__ == "__main__":
  main()
