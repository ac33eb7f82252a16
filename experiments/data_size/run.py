"""How much data is needed? Learning curves: test accuracy against the training-set size for the digits MLP
and CNN (stratified subsets, `data.class_counts`, drawn per seed from the `data` stream) and against the
number of labelled nodes for the karate-club GCN (`data.train_examples`); a power law fitted to each error
curve, where it flattens, and the size at which each model reaches 95% of its full-data accuracy.

  python experiments/data_size/run.py            # full run: 7.0-9.2 min on 2 shared CPU cores (load 6-9)
  python experiments/data_size/run.py --quick    # seconds; the same outputs' structure

Every size trains as many optimizer steps as the config's full-data run (the MLP 330, the CNN 440; the
karate GCN 200 full-graph steps), so a small set is not also under-trained; the batch is min(config's, n // 2):
at least two steps per epoch.
Each arm: `jaxflow.seeds(config, workdir, seeds=5, vary="all")`; seed i of every arm draws the same subset
for a given size, so the MLP and the CNN are compared on the same examples (paired).
Writes report.md, results.json and PNG plots into --out (default results/ beside this file).
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from experiments import harness_extras  # noqa: E402
from experiments.common import report, stats, study  # noqa: E402
from experiments.data_size import figures, fit, meaning  # noqa: E402

QUESTION = "How much data is needed?"
DIGITS_TRAIN = 1437  # the digits training split (jaxflow/data/digits.py: sklearn's 1797 images, 80/20 stratified)
QUICK_STEPS, QUICK_BATCH = 20, 10  # one batch size at every quick size: the init and eval programs compile once


@dataclasses.dataclass(frozen=True)
class Model:
  name: str
  config: str
  unit: str
  sizes: tuple[int, ...]  # the last is the full data (no subset) for the digits, the most labels for karate
  quick_sizes: tuple[int, ...]
  batch: int  # the config's batch size
  epochs: int  # the config's epochs
  graph: bool = False

  @property
  def steps(self) -> int:
    """The config's own budget of optimizer steps on the full data (a graph: one full-graph step per epoch)."""
    return self.epochs if self.graph else self.epochs * (DIGITS_TRAIN // self.batch)

  def overrides(self, n: int, quick: bool) -> tuple[str, ...]:
    steps = QUICK_STEPS if quick else self.steps
    if self.graph:
      return (f"data.train_examples={n}", f"train.epochs={steps}")
    batch = QUICK_BATCH if quick else min(self.batch, n // 2)  # at least two steps per epoch
    epochs = math.ceil(steps / (n // batch))
    subset = () if n == DIGITS_TRAIN else ("data.class_counts=(" + ", ".join([str(n // 10)] * 10) + ")",)
    # Quick: the other studies' tiny models (experiments/harness_extras), whose programs compile in a fraction of
    # the configs' own (the CNN's two conv layers cost ~10 s of CPU to compile).
    tiny = (harness_extras.QUICK_CNN_MODEL if "cnn" in self.config else harness_extras.QUICK_MLP_MODEL) if quick else ()
    return (*subset, *tiny, f"train.batch_size={batch}", f"train.epochs={epochs}")


DIGITS_SIZES = (20, 50, 100, 200, 500, 1000, DIGITS_TRAIN)
MODELS = (
  Model("MLP", "configs/digits_mlp.py", "training examples", DIGITS_SIZES, (20, 50), batch=128, epochs=30),
  Model("CNN", "configs/digits_cnn.py", "training examples", DIGITS_SIZES, (20,), batch=64, epochs=20),
  Model(
    "GCN (karate)", "configs/karate_gcn.py", "labelled nodes", (2, 4, 8, 12, 16, 24), (2, 4, 8), 1, 200, graph=True
  ),
)


def extract(summary: dict, workdir: str) -> dict:
  del workdir
  final = summary["final"]
  return {
    "accuracy": final["eval"]["accuracy"],
    "train_accuracy": final["train"].get("accuracy"),
    "num_params": summary["num_params"],
  }


def run_curves(session: study.Session, quick: bool) -> dict[str, list[tuple[int, study.ArmResult]]]:
  curves = {}
  for model in MODELS:
    curves[model.name] = []
    for n in model.quick_sizes if quick else model.sizes:
      arm = study.Arm(f"{model.name} n={n}", model.config, model.overrides(n, quick), mode="sequential")
      curves[model.name].append((n, session.run(arm, extract)))
  return curves


def summarize(model: Model, curve: list[tuple[int, study.ArmResult]]) -> dict:
  """Per size: accuracy mean and CI, the paired difference from the largest size; the fit; the 95% sizes."""
  sizes = [n for n, _ in curve]
  accuracy = [stats.mean_ci(r.values("accuracy")) for _, r in curve]
  full = curve[-1][1]
  resolution = full.resolution
  versus_full = [
    stats.compare(
      model.name,
      f"n={sizes[-1]}",
      full.values("accuracy"),
      f"n={n}",
      r.values("accuracy"),
      resolution=max(filter(None, (r.resolution, resolution)), default=None),
    )
    for n, r in curve[:-1]
  ]
  errors = [None if s["mean"] is None else 1 - s["mean"] for s in accuracy]
  law = fit.fit_power_law(sizes, errors, resolution)
  # A curve whose every smaller size ties with the largest is flat within the seeds' spread: a fitted
  # power law would only describe noise, so it is kept in results.json but not drawn or quoted.
  law["informative"] = bool(law["fitted"] and versus_full and any(d["verdict"] != "tie" for d in versus_full))
  full_mean = accuracy[-1]["mean"]
  target = 0.95 * full_mean if full_mean is not None else None
  tied = None  # the smallest n from which on every size ties with the largest
  for d in reversed(versus_full):
    if d["verdict"] != "tie":
      break
    tied = d["b"]
  return {
    "unit": model.unit,
    "sizes": sizes,
    "epochs": [int(next(o for o in r.arm.overrides if o.startswith("train.epochs=")).split("=")[1]) for _, r in curve],
    "accuracy": accuracy,
    "train_accuracy": [stats.mean_ci(r.values("train_accuracy")) for _, r in curve],
    "resolution": resolution,
    "versus_full": versus_full,
    "fit": law,
    "full_accuracy": full_mean,
    "target_95": target,
    "n95_measured": fit.first_size_reaching(sizes, [a["mean"] for a in accuracy], target) if target else None,
    "n95_fitted": fit.size_for_fraction(law, full_mean) if full_mean is not None else None,
    "smallest_tied_with_full": int(tied.split("=")[1]) if tied else None,
    "num_params": next((row["num_params"] for row in full.per_seed if row), None),
  }


def cnn_minus_mlp(curves: dict) -> list[dict]:
  mlp, cnn = dict(curves["MLP"]), dict(curves["CNN"])
  return [
    stats.compare(
      f"n={n}", "CNN", cnn[n].values("accuracy"), "MLP", mlp[n].values("accuracy"), resolution=cnn[n].resolution
    )
    for n in sorted(set(mlp) & set(cnn))
  ]


def curve_table(model: Model, s: dict) -> report.Table:
  rows = []
  for i, n in enumerate(s["sizes"]):
    d = s["versus_full"][i] if i < len(s["versus_full"]) else None
    rows.append(
      [
        str(n),
        str(n // 10) if not model.graph and n != DIGITS_TRAIN else ("all" if not model.graph else str(n // 2)),
        str(s["epochs"][i]),
        report.cell(s["train_accuracy"][i]),
        report.cell(s["accuracy"][i]),
        f"{d['mean']:+.3f} ({d['verdict']})" if d and d["mean"] is not None else "-",
      ]
    )
  per_class = "per club" if model.graph else "per class"
  header = [model.unit, per_class, "epochs", "train accuracy", "test accuracy", f"largest - this ({s['sizes'][-1]})"]
  note = f"Mean [95% t-CI] over seeds. Resolution of the largest arm's accuracy: {report.fmt(s['resolution'], 4)}."
  return report.Table(f"{model.name}: {model.config}", header, rows, note)


def fit_table(summaries: dict) -> report.Table:
  rows = []
  for name, s in summaries.items():
    f = s["fit"]
    params = (
      [
        f"{f['a']:.3g}",
        f"{f['b']:.3f}",
        f"{f['c']:.4f}",
        f"{f['rms_residual']:.4f}" + (" (exact)" if f["exact"] else ""),
      ]
      if f["fitted"]
      else ["-", "-", "-", f["why"]]
    )
    rows.append(
      [
        name,
        *params,
        fit.describe_size(f.get("flattens_at"), s["sizes"][0]) if f.get("informative") else "flat within the CI",
        report.fmt(s["full_accuracy"]),
        fit.describe_size(s["n95_measured"]),
        fit.describe_size(s["n95_fitted"], s["sizes"][0]) if f.get("informative") else "-",
        fit.describe_size(s["smallest_tied_with_full"]),
      ]
    )
  header = [
    "model",
    "a",
    "b",
    "c (floor)",
    "rms residual",
    "flattens at n",
    "largest-size accuracy",
    "95% reached at (measured)",
    "95% (fit)",
    "smallest n tied with the largest",
  ]
  note = (
    "error(n) = a n^-b + c fitted to the mean test error per size. Flattens: beyond this n, doubling the data is "
    "predicted to gain less than one eval example. 95%: the size reaching 95% of the largest size's accuracy."
  )
  return report.Table("Power-law fits and the sizes that suffice", header, rows, note)


def main(argv: list[str] | None = None) -> dict:
  args = study.parse_args(__file__, argv, description=__doc__.splitlines()[0])
  with study.session(args) as session:
    curves = run_curves(session, args.quick)
    summaries = {m.name: summarize(m, curves[m.name]) for m in MODELS}
    paired = cnn_minus_mlp(curves)
    plot_files = figures.draw(args.out, summaries)
    facts = {
      "title": "How much data is needed: learning curves",
      "question": QUESTION,
      "answer": meaning.answer(summaries, paired),
      "command": args.command,
      "quick": args.quick,
      "seeds": args.seeds,
      "setup": meaning.setup(MODELS, args, QUICK_STEPS, QUICK_BATCH),
      "arms": {r.arm.name: study.arm_facts(r) for curve in curves.values() for _, r in curve},
      "differences": paired + [d for s in summaries.values() for d in s["versus_full"]],
      "plots": plot_files,
      "meaning": meaning.paragraphs(summaries, paired),
      "caveats": meaning.caveats(args.seeds, summaries),
      "findings": summaries,
      "provenance": session.clock.finish(),
    }
  tables = [*(curve_table(m, summaries[m.name]) for m in MODELS), fit_table(summaries)]
  differences = [
    report.difference_table("CNN - MLP on the same subsets", paired),
    *(
      report.difference_table(f"{m.name}: largest size - each smaller one", summaries[m.name]["versus_full"])
      for m in MODELS
    ),
  ]
  shown = report.write(args.out, facts, tables, differences)
  print(shown["answer"])
  return shown


if __name__ == "__main__":
  main()
