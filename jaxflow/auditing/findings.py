"""The report's summary: one sentence per flagged problem, read from the report's sections."""

from __future__ import annotations

from jaxflow.auditing.splits import AuditThresholds


def summary(report: dict, names: list[str], t: AuditThresholds) -> dict:
  """The report's `summary`: every finding of every section, in a fixed order (leakage first)."""
  findings = (
    _leak_findings(report)
    + _conflict_findings(report["conflicting_labels"])
    + _within_duplicate_findings(report["duplicates"])
    + _balance_findings(report["class_balance"], names)
    + _shift_findings(report["shift"])
    + _attribute_findings(report["attribute_bias"])
  )
  return {"num_findings": len(findings), "findings": findings}


def _count(n: int, noun: str, plural: str | None = None) -> str:
  return f"{n} {noun if n == 1 else plural or noun + 's'}"


def _leak_findings(report: dict) -> list[str]:
  out = []
  dup = report["duplicates"]
  for key, e in dup["exact"]["across"].items():
    if e["num_b_in_a"]:
      out.append(
        f"{_count(e['num_b_in_a'], repr(e['split_b']) + ' example')} ({e['fraction_b_in_a']:.1%}) exactly "
        f"copied from '{e['split_a']}': leakage between splits"
      )
    near = dup["near"]["across"][key]
    if near["num_b_near_a"]:
      out.append(
        f"{_count(near['num_b_near_a'], repr(near['split_b']) + ' example')} with a near duplicate in "
        f"'{near['split_a']}' (L2 distance <= {dup['near_radius']:.3g}): likely leakage"
      )
  return out


def _conflict_findings(conflicts: dict) -> list[str]:
  out = [
    f"split '{s}': {_count(c['num_groups'], 'group')} of identical inputs with different labels: label noise"
    for s, c in conflicts["within"].items()
    if c["num_groups"]
  ]
  return out + [
    f"{_count(c['num_groups'], 'input')} in both '{c['split_a']}' and '{c['split_b']}' "
    "with different labels: label noise"
    for c in conflicts["across"].values()
    if c["num_groups"]
  ]


def _within_duplicate_findings(dup: dict) -> list[str]:
  out = [
    f"split '{s}' holds {_count(e['num_groups'], 'group')} of exact duplicates "
    f"({_count(e['num_redundant_copies'], 'redundant copy', 'redundant copies')})"
    for s, e in dup["exact"]["within"].items()
    if e["num_groups"]
  ]
  return out + [
    f"split '{s}' holds {_count(n['num_pairs'], 'near-duplicate pair')} (L2 distance <= {dup['near_radius']:.3g})"
    for s, n in dup["near"]["within"].items()
    if n["num_pairs"]
  ]


def _balance_findings(balance: dict, names: list[str]) -> list[str]:
  out = []
  for s, b in balance["splits"].items():
    if b["flagged"]:
      out.append(
        f"split '{s}' is imbalanced: class '{names[b['largest_class']]}' has {b['imbalance_ratio']:.1f}x the "
        f"examples of class '{names[b['smallest_nonzero_class']]}'"
      )
    if b["empty_classes"]:
      out.append(f"split '{s}' has no examples of class(es) " + ", ".join(f"'{names[c]}'" for c in b["empty_classes"]))
    if b["num_out_of_range_labels"]:
      out.append(f"split '{s}' has {b['num_out_of_range_labels']} labels outside [0, {len(names)})")
  return out


def _shift_findings(shift: dict) -> list[str]:
  out = []
  x, y = shift["input_shift"], shift["label_shift"]
  if x and x["flagged"]:
    out.append(
      f"'{x['split_b']}' differs from '{x['split_a']}' in per-example mean intensity (KS D {x['ks_statistic']:.2f}, "
      f"p {x['ks_p_value']:.1e}, Cohen's d {x['cohens_d']:.2f}): measurement shift"
    )
  if y and y["flagged"]:
    out.append(
      f"the label distribution of '{y['split_b']}' differs from '{y['split_a']}' (total variation "
      f"{y['total_variation']:.2f}, chi-square p {y['p_value']:.1e})"
    )
  return out


def _attribute_findings(bias: dict) -> list[str]:
  out = []
  for key, a in bias["attributes"].items():
    if a["flagged"]:
      where = ", ".join(
        f"{p['cramers_v']:.2f} {'over all splits' if s == 'all' else 'in ' + s}"
        for s, p in a["splits"].items()
        if p["cramers_v"] is not None
      )
      out.append(f"attribute '{key}' predicts the label (Cramér's V {where}): sample bias")
  return out
