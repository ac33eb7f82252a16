"""What the study measures of a trained seed and of the audit, through jaxflow's public API only.

The effect of a section: jaxflow has no per-feature attribution for tabular inputs, so each seed's run is exported
(`jaxflow.export`, the final parameters: `checkpoint="latest"`, since the best checkpoint would be picked on the
unfiltered eval split the recorded arm must not see) and loaded back (`jaxflow.load_model`, which replays the
run's feature standardization). Its effect of one more hit in section s is the mean, over the planes of the
unfiltered held-out sample, of logit p(hits + e_s) - logit p(hits): the log odds of loss one hole adds, in the
units of data.LETHALITY, so a model can be read against the truth. Log odds, not probability: a filter on the
outcome alone shifts every predicted probability (the base rate) without touching the log odds ratio, and the
study must tell that shift apart from an inverted effect.

The audit's facts: `jaxflow.audit` compares a training split with the unfiltered sample: class balance, label
shift, input shift (per-feature standardized mean difference), and each hits_<section> attribute's association
with the label per split (Cramér's V and its contingency table, from which the loss rate per hit count follows).
"""

from __future__ import annotations

import json
import os

import numpy as np

import jaxflow
from experiments.survivorship_bias import data

EVAL_METRICS = ("accuracy", "balanced_accuracy", "loss")
CLIP = 1e-7  # probabilities are float32: keep log odds finite at 0 and 1


def _log_odds(p: np.ndarray) -> np.ndarray:
  p = np.clip(np.asarray(p, np.float64), CLIP, 1 - CLIP)
  return np.log(p) - np.log1p(-p)


def probe(model, hits: np.ndarray, lost: np.ndarray) -> dict:
  """Per-section effects (log odds per extra hit), and predicted vs observed loss rate per engine-hit bucket."""
  x = hits.astype(np.float32)
  p = np.asarray(model(x)["probabilities"])[:, 1]
  base = _log_odds(p)
  row = {}
  for k, section in enumerate(data.SECTIONS):
    more = x.copy()
    more[:, k] += 1
    row[f"effect/{section}"] = float((_log_odds(np.asarray(model(more)["probabilities"])[:, 1]) - base).mean())
  effects = [row[f"effect/{s}"] for s in data.SECTIONS]
  row["armour_first"] = data.SECTIONS[int(np.argmax(effects))]
  row["engine_rank"] = int(1 + sum(e > effects[0] for e in effects[1:]))  # 1: the deadliest section
  row["predicted_loss_rate"] = float(p.mean())
  row["observed_loss_rate"] = float(lost.mean())
  buckets = data.bucket(hits[:, 0])
  for b, name in enumerate(data.BUCKETS):
    here = buckets == b
    row[f"engine_{name}/predicted"] = float(p[here].mean()) if here.any() else None
    row[f"engine_{name}/observed"] = float(lost[here].mean()) if here.any() else None
  return row


def seed_of(workdir: str) -> int:
  """The seed index a run evaluated, from its eval split's name (`test_<i>`) in the workdir's config.json."""
  with open(os.path.join(workdir, "config.json")) as f:
    return int(json.load(f)["config"]["data"]["eval_split"].rsplit("_", 1)[1])


def extractor(wars: list[dict]):
  """The per-seed extract for study runs: eval metrics of summary.json (overall and per engine-hit group), then
  the exported model probed on that seed's unfiltered sample."""

  def extract(summary: dict, workdir: str) -> dict:
    final = summary["final"]["eval"]
    row = {m: final[m] for m in EVAL_METRICS}
    for b, name in enumerate(data.BUCKETS):
      row[f"engine_{name}/ece"] = final.get(f"group/{b}/ece")
      row[f"engine_{name}/accuracy"] = final.get(f"group/{b}/accuracy")
    out = os.path.join(workdir, "export")
    jaxflow.export(workdir, out, checkpoint="latest")
    hits, lost = wars[seed_of(workdir)]["test"]
    return {**row, **probe(jaxflow.load_model(out), hits, lost)}

  return extract


def _loss_rates(table: list[list[int]]) -> list[float | None]:
  """Loss rate per attribute row of a [bucket, class] contingency table (class 1: lost)."""
  return [row[1] / sum(row) if sum(row) else None for row in table]


def audit_facts(report: dict, train: str, test: str) -> dict:
  """The numbers of one `jaxflow.audit` report that bear on survivorship: label balance and shift, input shift,
  and per section the association of its hit count with loss in the training split and the unfiltered sample."""
  balance = report["class_balance"]["splits"]
  label, inputs = report["shift"]["label_shift"], report["shift"]["input_shift"]
  top = inputs["top_shifted"][0]
  sections = {}
  for s in data.SECTIONS:
    if f"hits_{s}" not in report["attribute_bias"]["attributes"]:
      continue  # a quick run audits the engine's hits alone
    splits = report["attribute_bias"]["attributes"][f"hits_{s}"]["splits"]
    values = report["attribute_bias"]["attributes"][f"hits_{s}"]["values"]
    sections[s] = {
      split: {
        "cramers_v": splits[name]["cramers_v"],
        "flagged": splits[name]["flagged"],
        "values": values,
        "loss_rate": _loss_rates(splits[name]["table"]),
        "table": splits[name]["table"],
      }
      for split, name in (("train", train), ("test", test))
    }
  return {
    "lost_share": {"train": balance[train]["fractions"][1], "test": balance[test]["fractions"][1]},
    "imbalance_flagged": {"train": balance[train]["flagged"], "test": balance[test]["flagged"]},
    "label_shift": {k: label[k] for k in ("total_variation", "p_value", "flagged")},
    "input_shift": {k: inputs[k] for k in ("ks_statistic", "ks_p_value", "cohens_d", "flagged")},
    "most_shifted": {"section": data.SECTIONS[top["index"]], "smd": top["smd"]},
    "smd": {data.SECTIONS[t["index"]]: t["smd"] for t in inputs["top_shifted"]},
    "sections": sections,
    "findings": report["summary"]["findings"],
  }


def rate_gap(facts: dict, section: str, split: str) -> float | None:
  """Loss rate of planes with one or more hits in `section` minus that of planes with none, in the audit's table."""
  entry = facts["sections"][section][split]
  table = np.asarray(entry["table"])
  rows = [str(v) for v in entry["values"]]
  if "0" not in rows or table.shape[0] < 2:
    return None
  none = table[rows.index("0")]
  hit = table[[i for i, v in enumerate(rows) if v != "0"]].sum(axis=0)
  if not none.sum() or not hit.sum():
    return None
  return float(hit[1] / hit.sum() - none[1] / none.sum())
