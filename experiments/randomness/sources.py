"""From a `jaxflow.seeds(..., study="sources")` report to the study's numbers: per sweep the seeds' accuracies and
losses, the spread the runner measured (std with bootstrap CIs, disagreement, correctness correlation, ensemble),
and the determinism checks.

Why read the runner's report rather than recompute: the runner already evaluates every seed's final parameters
once (verified against each summary's params hash) and bootstraps over seeds; recomputing here would be a second
implementation of the same statistics, and the study is about what jaxflow reports.
"""

from __future__ import annotations

import json
import os
import re

from experiments.common import report, stats

ORDER = ("init", "data", "dropout", "augment", "noise", "sampler", "one_bit", "all", "none")


def per_seed(sweep: dict) -> list[dict | None]:
  """Each seed's final eval accuracy and loss, from its summary.json (None where the seed failed)."""
  rows = []
  for row in sweep["seeds"]:
    if row["status"] != "completed":
      rows.append(None)
      continue
    with open(os.path.join(row["workdir"], "summary.json")) as f:
      final = json.load(f)["final"]["eval"]
    rows.append({"accuracy": final["accuracy"], "loss": final["loss"], "params_sha256": row["params_sha256"]})
  return rows


def sweeps(seeds_report: dict) -> dict:
  """{sweep: its numbers}, in ORDER: per-seed values, their mean CI, and the runner's spread."""
  out = {}
  by_name = {s["name"]: s for s in seeds_report["sweeps"]}
  for name in [n for n in ORDER if n in by_name]:
    s = by_name[name]
    rows = per_seed(s)
    spread = s["spread"]
    agreement = spread.get("agreement") or {}
    hashes = {r["params_sha256"] for r in rows if r}
    out[name] = {
      "vary": s["vary"],
      "seconds": round(s["seconds"], 1),
      "per_seed": rows,
      "accuracy": stats.mean_ci([r and r["accuracy"] for r in rows]),
      "loss": stats.mean_ci([r and r["loss"] for r in rows]),
      "accuracy_std": spread["accuracy_std"],
      "loss_std": spread["loss_std"],
      "disagreement": agreement.get("disagreement"),
      "correctness_correlation": agreement.get("correctness_correlation"),
      "ensemble": {k: v for k, v in (agreement.get("ensemble") or {}).items() if k != "single_accuracies"},
      "distinct_params": len(hashes),
      "seeds_needed": s.get("seeds_needed"),
      "variance_share": (seeds_report.get("variance_by_source") or {}).get(name, {}).get("share"),
    }
  return out


def _interval(d: dict | None, scale: float = 1.0, digits: int = 2, kind: str = "f") -> str:
  """'value [lo, hi]' of the runner's {std|mean, ci95} dicts."""
  if not d:
    return "-"
  value = d.get("std", d.get("mean"))
  if value is None:
    return "-"
  ci = d.get("ci95")
  text = f"{value * scale:.{digits}{kind}}"
  return text + (f" [{ci[0] * scale:.{digits}{kind}}, {ci[1] * scale:.{digits}{kind}}]" if ci else "")


def spread_table(found: dict, title: str) -> report.Table:
  rows = []
  for name, s in found.items():
    ens = s["ensemble"]
    share = s["variance_share"]
    rows.append(
      [
        name,
        str(s["accuracy"]["n"]),
        report.cell(s["accuracy"], 4),
        _interval(s["accuracy_std"], 100),
        _interval(s["loss_std"], 1, 2, "g"),
        _interval(s["disagreement"], 100),
        _interval(s["correctness_correlation"], 1, 3),
        report.fmt(ens.get("accuracy"), 4),
        "-" if share is None else f"{share:.0%}",
        str(s["distinct_params"]),
      ]
    )
  header = [
    "source varied",
    "seeds",
    "mean accuracy [95% t-CI]",
    "std accuracy (points)",
    "std loss",
    "pairwise disagreement (%)",
    "correctness correlation",
    "ensemble accuracy",
    "share of the sources' summed variance",
    "distinct trained params",
  ]
  note = (
    "std, disagreement and correlation: the seeds runner's 95% percentile bootstrap over seeds; `none` varies no "
    "stream (the floor: nondeterminism of the machine itself); `one_bit` flips the lowest mantissa bit of one "
    "initial weight, everything else pinned. Distinct trained params: distinct params_sha256 among the seeds."
  )
  return report.Table(title, header, rows, note)


def published_rows(found: dict, reference: dict | None, published: dict) -> report.Table:
  """Our std per source (MLP, and the CNN reference where it ran) beside Summers & Dinneen's, theirs labelled."""
  theirs = published["std_accuracy_percent"]
  rows = []
  for name in ("init", "data", "augment", "dropout", "hardware", "one_bit", "all", "none"):
    ours = found.get(name)
    ref = (reference or {}).get(name)
    if ours is None and ref is None and name not in theirs:
      continue
    label = f"{name} (theirs: {published['their_name'][name]})" if name in published["their_name"] else name
    rows.append(
      [
        label,
        _interval(ours["accuracy_std"], 100) if ours else "not applicable (CPU: no cuDNN)",
        _interval(ref["accuracy_std"], 100) if ref else "-",
        str(theirs.get(name, "-")),
        _interval(ours["disagreement"], 100) if ours else "-",
        _interval(ref["disagreement"], 100) if ref else "-",
        f"~{published['pairwise_disagreement_percent']}" if name == "all" else "-",
      ]
    )
  header = [
    "source",
    "ours, MLP: std accuracy (points)",
    "ours, CNN reference: std accuracy (points)",
    f"theirs: SD accuracy (%), {published['model']} / {published['dataset']}",
    "ours, MLP: disagreement (%)",
    "ours, CNN reference: disagreement (%)",
    "theirs: disagreement (%)",
  ]
  note = (
    f"Theirs: {published['who']}; {published['model']} on {published['dataset']} (10,000 test images), figures as "
    "issue 21/22 quote them. Ours: 360 test digits (one image = 0.28 points), so compare the pattern across sources, "
    "not the values."
  )
  return report.Table("Beside the published figures", header, rows, note)


def determinism_table(checks: list[dict]) -> report.Table:
  rows = []
  for c in checks:
    equal = c.get("bitwise_equal")
    diff = c.get("max_abs_diff")
    rows.append(
      [
        c["check"],
        {True: "yes", False: "no", None: "not measured"}[equal],
        "-" if diff is None else f"{diff:.3g}",
        # the runner's plots stay in its (temporary) workdir; a pipe would end the table cell
        re.sub(r"\s*!\[[^\]]*\]\([^)]*\)", "", c["statement"]).replace("|", "\\|"),
      ]
    )
  header = ["check", "bitwise equal", "max abs param difference", "as jaxflow states it"]
  return report.Table("Determinism: the same seed, trained again", header, rows)


def against_all(found: dict, resolution: float | None) -> list[dict]:
  """Each source's accuracy minus the `all` sweep's, seed index by seed index: does a source shift the mean, or
  only spread it? (Seed i of both sweeps shares that source's stream, so the pairs are honest pairs.)"""
  if "all" not in found:
    return []
  base = [r and r["accuracy"] for r in found["all"]["per_seed"]]
  return [
    stats.compare("accuracy", name, [r and r["accuracy"] for r in s["per_seed"]], "all", base, resolution=resolution)
    for name, s in found.items()
    if name != "all"
  ]
