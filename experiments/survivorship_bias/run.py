"""Survivorship bias, the planes story: when the data that reaches you is filtered by the outcome, conclusions
invert. Generated sorties (hits per section, lost or returned; experiments/survivorship_bias/data.py) where only
returning planes and the wrecks that came down over friendly ground are recorded; a jaxflow MLP trained on that
record against one trained on all sorties and one on a filter by the outcome alone; every model read on an
unfiltered held-out sample (the effect of one more hit per section, its calibration per engine-hit count); and
`jaxflow.audit` of each training split against that sample.

  python experiments/survivorship_bias/run.py            # full run: 3.7 min on 2 shared cores (load 8-5; 6.6 at 11)
  python experiments/survivorship_bias/run.py --quick    # seconds; the same outputs' structure

Seed i of every arm is one fresh draw of the war (np.random.default_rng([DATA_SEED, i])) and trains with `seed=i`
through `jaxflow.seeds(..., seeds=1)` (experiments.harness_extras.per_seed_arm): arms are paired by seed, and the
intervals cover the sampling of planes as well as training. Writes report.md, results.json and PNG plots into
--out (default results/ beside this file).
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
from experiments.survivorship_bias import data, figures, meaning, measure  # noqa: E402
from experiments.survivorship_bias import tables as tables_lib  # noqa: E402

QUESTION = "Is there survivorship bias? (the planes story: armour where the returning planes have no holes)"
CONFIG = "configs/digits_mlp.py"
MODEL = ("model.widths=(64, 64)", "train.batch_size=256", "train.epochs=25")  # 775 Adam steps on 8,000 planes
QUICK = (*kit.QUICK_MLP, f"data.train_examples={kit.QUICK_TRAIN}")
REFERENCE = "population"


@dataclasses.dataclass(frozen=True)
class Filter:
  name: str  # the arm
  kind: str  # its training split in the NPZ: data.FILTERS
  what: str  # the report's setup line


FILTERS = (
  Filter(REFERENCE, "population", "every sortie, unfiltered (what Wald wished he had)"),
  Filter(
    "recorded", "recorded", "what reaches the analyst: every returning plane, and lost planes over friendly ground"
  ),
  Filter("outcome-only", "outcome_only", "control: the same returned planes and as many lost ones, drawn at random"),
)
QUICK_FILTERS = (REFERENCE, "recorded")


def audited_sections(quick: bool) -> tuple[str, ...]:
  return data.SECTIONS[:1] if quick else data.SECTIONS


def overrides(npz: str, quick: bool) -> tuple[str, ...]:
  dataset = (
    f"data.name=npz:{npz}",
    "data.input_feature=features",
    f"data.label_feature={data.LABEL}",
    "problem.kind=binary",
    "data.group_feature=hits_engine",
    # Every run reads the attributes the audit reads, so that jaxflow prepares the NPZ once for all of them. Quick:
    # the engine's alone (the audit draws one heatmap per attribute, a second of CPU each).
    "data.metadata_features=(" + "".join(f"'hits_{s}', " for s in audited_sections(quick)) + ")",
    "model.dropout_rate=0.0",
  )
  return (*dataset, *(QUICK if quick else MODEL))


def splits(kind: str, seed: int) -> tuple[str, str]:
  return (f"data.train_split={data.split_name(kind, seed)}", f"data.eval_split={data.split_name(data.TEST, seed)}")


def run_arms(session: study.Session, filters, npz: str, wars: list[dict]) -> dict:
  """Each filter's arm, seed i on seed i's draw of the war; the extract exports and probes every seed's model."""
  results, extract = {}, measure.extractor(wars)
  for f in filters:
    arm = study.Arm(f.name, CONFIG, overrides(npz, session.args.quick), mode="sequential")
    results[f.name] = kit.per_seed_arm(session, arm, lambda i, kind=f.kind: splits(kind, i), extract)
  return results


def run_audits(session: study.Session, filters, npz: str) -> dict:
  """`jaxflow.audit` of each arm's seed-0 training split against seed 0's unfiltered sample."""
  out = {}
  for f in filters:
    arm = study.Arm(f.name, CONFIG, (*overrides(npz, session.args.quick), *splits(f.kind, 0)))
    slug = "".join(c if c.isalnum() else "_" for c in f.name)
    audit = jaxflow.audit(session.config(arm), os.path.join(session.root, f"audit_{slug}"))
    out[f.name] = measure.audit_facts(audit, data.split_name(f.kind, 0), data.split_name(data.TEST, 0))
    print(f"[{session.args.name}] audit of {f.name}: {len(out[f.name]['findings'])} findings", flush=True)
  return out


def effect_keys() -> list[str]:
  return [f"effect/{s}" for s in data.SECTIONS]


def metric_keys() -> list[str]:
  per_bucket = [f"engine_{b}/{m}" for b in data.BUCKETS for m in ("ece", "accuracy", "predicted", "observed")]
  keys = [*measure.EVAL_METRICS, "predicted_loss_rate", "observed_loss_rate", "engine_rank"]
  return keys + per_bucket + effect_keys()


def summarize(results: dict, linear: dict) -> dict:
  out = {}
  for name, r in results.items():
    s = {k: stats.mean_ci(r.values(k)) for k in metric_keys()}
    s["armour_first"] = [row["armour_first"] if row else None for row in r.per_seed]
    for k, section in enumerate(data.SECTIONS):
      s[f"linear/{section}"] = stats.mean_ci([coefficients[k] for coefficients in linear[name]])
    out[name] = s
  return out


def linear_reference(filters, wars: list[dict]) -> dict:
  """{arm: per seed, an unpenalized logistic regression's coefficients on that seed's training split}.

  Why: the truth is a logistic model, so its coefficients are what a perfect model of each record learns (the
  Bayes identity in data.py); beside the MLP's averaged finite differences they show which part of a gap is the
  filter and which the network's extrapolation. scikit-learn, because jaxflow has no linear model whose
  coefficients it reports; a reference statistic, not a trained arm."""
  import numpy as np
  from sklearn.linear_model import LogisticRegression

  out = {}
  for f in filters:
    out[f.name] = []
    for war in wars:
      hits, lost = war["train"][f.kind]
      fit = LogisticRegression(C=np.inf, max_iter=2000).fit(hits.astype(float), lost)
      out[f.name].append(fit.coef_[0].tolist())
  return out


def hangar(wars: list[dict]) -> dict:
  """Wald's table over seeds: holes per plane by section on returning planes and on all sorties, and their ratio."""
  rows = [data.hangar(w) for w in wars]
  out = {}
  for k, s in enumerate(data.SECTIONS):
    returned, every = [r["returned"][k] for r in rows], [r["all"][k] for r in rows]
    out[s] = {
      "area": float(data.AREA[k]),
      "all": stats.mean_ci(every),
      "returned": stats.mean_ci(returned),
      "ratio": stats.mean_ci([a / b for a, b in zip(returned, every, strict=True)]),
      "returned_per_area": stats.mean_ci([a / data.AREA[k] for a in returned]),
    }
  return out


def differences(results: dict, test_size: int) -> list[dict]:
  """Each filtered arm minus the population's, seed by seed: every section's effect, and the eval metrics."""
  base = results[REFERENCE]
  rows = []
  for name, r in results.items():
    if name == REFERENCE:
      continue
    for key in effect_keys():
      row = stats.compare(key, name, r.values(key), REFERENCE, base.values(key), resolution=None)
      if row["verdict"] != "tie":  # an effect is not better or worse, only higher or lower
        row["verdict"] = f"{name} {'higher' if row['mean'] > 0 else 'lower'}"
      rows.append(row)
    for key, resolution, higher in (
      ("accuracy", stats.accuracy_resolution(test_size), True),
      ("balanced_accuracy", stats.accuracy_resolution(test_size), True),
      ("loss", None, False),
      ("engine_2+/ece", None, False),
    ):
      rows.append(
        stats.compare(
          key, name, r.values(key), REFERENCE, base.values(key), resolution=resolution, higher_is_better=higher
        )
      )
  return rows


def main(argv: list[str] | None = None) -> dict:
  args = study.parse_args(__file__, argv, description=__doc__.splitlines()[0])
  filters = [f for f in FILTERS if not args.quick or f.name in QUICK_FILTERS]
  sizes = data.QUICK if args.quick else data.FULL
  with study.session(args) as session:
    npz = os.path.join(session.root, "data", "planes.npz")
    wars = data.build(npz, args.seeds, sizes)
    results = run_arms(session, filters, npz, wars)
    audits = run_audits(session, [f for f in filters if not args.quick or f.name == "recorded"], npz)
    summaries, wald = summarize(results, linear_reference(filters, wars)), hangar(wars)
    rows = differences(results, sizes.test)
    plot_files = figures.draw(args.out, summaries, wald, audits)
    facts = {
      "title": "Survivorship bias: what the returning planes say about where to add armour",
      "question": QUESTION,
      "answer": meaning.answer(summaries, rows, audits),
      "command": args.command,
      "quick": args.quick,
      "seeds": args.seeds,
      "setup": meaning.setup(filters, sizes, args, QUICK if args.quick else MODEL, data.counts(wars[0])),
      "arms": {f.name: {**study.arm_facts(results[f.name]), "filter": f.kind} for f in filters},
      "differences": rows,
      "plots": plot_files,
      "meaning": meaning.paragraphs(summaries, rows, audits, wald),
      "caveats": meaning.caveats(args, sizes),
      "findings": {"arms": summaries, "hangar": wald, "audit_seed0": audits, "data_seed0": data.counts(wars[0])},
      "provenance": session.clock.finish(),
    }
  tables = [tables_lib.hangar(wald), tables_lib.effects(summaries), tables_lib.evaluation(summaries, sizes.test)]
  tables += [tables_lib.audit(audits), tables_lib.audit_sections(audits)]
  diff_tables = [report.difference_table(f"Each filtered arm - {REFERENCE}, seed by seed", rows)]
  shown = report.write(args.out, facts, tables, diff_tables)
  print(shown["answer"])
  return shown


if __name__ == "__main__":
  main()
