"""The audit report as Markdown (report.md): every section's definition, its numbers as tables, its plots.

Drawn from the report dict alone, so a report read back from report.json renders the same. Long
listings are cut at `_MAX_ROWS` rows; report.json keeps all it has.
"""

from __future__ import annotations

_MAX_ROWS = 20  # table rows per listing in report.md; report.json keeps all it has


def markdown(report: dict, plots: dict[str, str] | None = None) -> str:
  """The report as Markdown; `plots` maps plot names (as `report.write_report` returns them) to relative paths."""
  plots = plots or {}
  parts = [
    _intro(report),
    _findings_md(report["summary"]),
    _balance_md(report["class_balance"], report["meta"], plots),
    _duplicates_md(report["duplicates"]),
    _conflicts_md(report["conflicting_labels"]),
    _shift_md(report["shift"], plots),
    _attributes_md(report["attribute_bias"], report["meta"], plots),
  ]
  return "\n\n".join(parts) + "\n"


def _table(headers: list[str], rows: list[list]) -> str:
  def cell(v) -> str:
    return fmt(v).replace("|", "\\|")

  lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
  return "\n".join(lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows])


def fmt(v) -> str:
  """One table cell or number as text: – for None, **yes**/no for flags, 3 significant digits for floats."""
  if v is None:
    return "–"
  if isinstance(v, bool):
    return "**yes**" if v else "no"
  if isinstance(v, float):
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.3e}"
  return str(v)


def _more(total: int, shown: int) -> str:
  return f"\n\n({shown} of {total} shown.)" if total > shown else ""


def _intro(report: dict) -> str:
  meta = report["meta"]
  rows = [
    [s, m["num_examples"], "x".join(map(str, m["example_shape"])), ", ".join(m["metadata"]) or "–"]
    for s, m in meta["splits"].items()
  ]
  return (
    f"# Dataset audit\n\n{meta['num_classes']} classes; train split `{meta['train_split']}`, eval split "
    f"`{meta['eval_split']}`.\n\n" + _table(["split", "examples", "example shape", "metadata"], rows)
  )


def _findings_md(summary: dict) -> str:
  if not summary["findings"]:
    return "## Findings\n\nNo findings: nothing crossed a threshold."
  return "## Findings\n\n" + "\n".join(f"- {f}" for f in summary["findings"])


def _balance_md(balance: dict, meta: dict, plots: dict) -> str:
  splits = balance["splits"]
  names = meta["class_names"]
  rows = [
    [names[c]] + [f"{b['counts'][c]} ({b['fractions'][c]:.1%})" for b in splits.values()] for c in range(len(names))
  ]
  rows.append(["**imbalance ratio**"] + [b["imbalance_ratio"] for b in splits.values()])
  rows.append(["flagged"] + [b["flagged"] for b in splits.values()])
  empty = [
    f"`{s}`: " + ", ".join(names[c] for c in b["empty_classes"]) for s, b in splits.items() if b["empty_classes"]
  ]
  text = f"## Class balance\n\n{balance['definition']}\n\n" + _table(["class"] + list(splits), rows)
  if empty:
    text += "\n\nClasses with no examples: " + "; ".join(empty) + "."
  return text + _image(plots, "class_counts", "class counts per split")


def _image(plots: dict, name: str, alt: str) -> str:
  return f"\n\n![{alt}]({plots[name]})" if name in plots else ""


def _duplicates_md(dup: dict) -> str:
  exact, near = dup["exact"], dup["near"]
  within = [
    [
      s,
      e["num_groups"],
      e["num_examples_in_groups"],
      e["num_redundant_copies"],
      near["within"][s]["num_pairs"],
      near["within"][s]["num_examples"],
    ]
    for s, e in exact["within"].items()
  ]
  across = [
    [
      k,
      e["num_pairs"],
      e["num_b_in_a"],
      f"{e['fraction_b_in_a']:.2%}",
      near["across"][k]["num_pairs"],
      near["across"][k]["num_b_near_a"],
    ]
    for k, e in exact["across"].items()
  ]
  text = (
    f"## Duplicates\n\n**Exact**: {dup['definition']['exact']}\n\n**Near**: {dup['definition']['near']}\n\n"
    f"Typical nearest-neighbour distance {fmt(dup['typical_nn_distance'])}; near-duplicate radius "
    f"{fmt(dup['near_radius'])}.\n\n### Within each split\n\n"
    + _table(
      ["split", "exact groups", "examples in groups", "redundant copies", "near pairs", "examples in near pairs"],
      within,
    )
  )
  if across:
    text += "\n\n### Across splits (leakage)\n\n" + _table(
      ["splits a/b", "exact pairs", "b examples in a", "fraction of b", "near pairs", "b examples near a"], across
    )
  return text + _exact_examples_md(exact) + _near_examples_md(near)


def named(indices, names) -> str:
  """Indices with the examples' names when the dataset keeps them (`3 (circle/a.png)`)."""
  if names is None:
    return ", ".join(map(str, indices))
  return ", ".join(f"{i} ({n})" for i, n in zip(indices, names, strict=True))


def _exact_examples_md(exact: dict) -> str:
  rows = [
    [s, named(g["indices"], g.get("names")), ", ".join(map(str, g["labels"]))]
    for s, e in exact["within"].items()
    for g in e["groups"]
  ]
  rows += [
    [
      k,
      f"{named([p['index_a']], [p['name_a']] if 'name_a' in p else None)} / "
      f"{named([p['index_b']], [p['name_b']] if 'name_b' in p else None)}",
      f"{p['label_a']} / {p['label_b']}",
    ]
    for k, e in exact["across"].items()
    for p in e["pairs"]
  ]
  if not rows:
    return ""
  return (
    "\n\n### Exact duplicates (examples)\n\n"
    + _table(["split(s)", "indices", "labels"], rows[:_MAX_ROWS])
    + _more(len(rows), min(len(rows), _MAX_ROWS))
  )


def _near_examples_md(near: dict) -> str:
  comparisons = list(near["within"].values()) + list(near["across"].values())
  rows = [
    [
      c["split_a"],
      named([p["index_a"]], [p["name_a"]] if "name_a" in p else None),
      c["split_b"],
      named([p["index_b"]], [p["name_b"]] if "name_b" in p else None),
      p["distance"],
      f"{p['label_a']} / {p['label_b']}",
    ]
    for c in comparisons
    for p in c["pairs"]
  ]
  truncated = [f"{c['split_a']}/{c['split_b']}" for c in comparisons if c["truncated"]]
  text = (
    ""
    if not rows
    else "\n\n### Near duplicates (examples)\n\n"
    + _table(["split a", "index a", "split b", "index b", "L2 distance", "labels"], rows[:_MAX_ROWS])
    + _more(len(rows), min(len(rows), _MAX_ROWS))
  )
  if truncated:
    text += "\n\nSearch stopped early (too many candidates), counts are lower bounds for: " + ", ".join(truncated) + "."
  return text


def _conflicts_md(conflicts: dict) -> str:
  counts = [[s, c["num_groups"], c["num_examples"]] for s, c in conflicts["within"].items()]
  counts += [[k, c["num_groups"], "–"] for k, c in conflicts["across"].items()]
  rows = [
    [s, named(g["indices"], g.get("names")), ", ".join(map(str, g["labels"]))]
    for s, c in conflicts["within"].items()
    for g in c["groups"]
  ]
  rows += [
    [
      k,
      f"{named(g['indices_a'], g.get('names_a'))} / {named(g['indices_b'], g.get('names_b'))}",
      f"{g['labels_a']} / {g['labels_b']}",
    ]
    for k, c in conflicts["across"].items()
    for g in c["groups"]
  ]
  text = f"## Conflicting labels\n\n{conflicts['definition']}\n\n" + _table(["split(s)", "groups", "examples"], counts)
  if rows:
    text += (
      "\n\n" + _table(["split(s)", "indices", "labels"], rows[:_MAX_ROWS]) + _more(len(rows), min(len(rows), _MAX_ROWS))
    )
  return text


def _shift_md(shift: dict, plots: dict) -> str:
  per = shift["splits"]
  axis = next(iter(per.values()))["axis"]
  rows = [
    [s, p["mean"], p["std"], p["example_mean"]["p05"], p["example_mean"]["median"], p["example_mean"]["p95"]]
    for s, p in per.items()
  ]
  text = f"## Train/eval shift\n\n{shift['definition']}\n\n" + _table(
    ["split", "mean", "std", "example mean p05", "example mean median", "example mean p95"], rows
  )
  width = len(next(iter(per.values()))[f"{axis}_mean"])
  if width <= 16:
    text += "\n\n" + _table(
      ["split"] + [f"{axis} {k} mean / std" for k in range(width)],
      [[s] + [f"{m:.3g} / {d:.3g}" for m, d in zip(p[f"{axis}_mean"], p[f"{axis}_std"])] for s, p in per.items()],
    )
  text += _input_shift_md(shift["input_shift"]) + _label_shift_md(shift["label_shift"])
  return text + _image(plots, "mean_intensity", "per-example mean histogram")


def _input_shift_md(x: dict | None) -> str:
  if x is None:
    return "\n\nNo eval split to compare with."
  text = f"\n\n### Input shift: `{x['split_a']}` vs `{x['split_b']}`\n\n" + _table(
    ["KS D", "KS p-value", "Cohen's d", "mean difference", "flagged"],
    [[x["ks_statistic"], x["ks_p_value"], x["cohens_d"], x["mean_difference"], x["flagged"]]],
  )
  top = [[t["index"], t["mean_a"], t["mean_b"], t["smd"]] for t in x["top_shifted"]]
  return (
    text
    + f"\n\nLargest standardized mean differences per {x['axis']}:\n\n"
    + _table([x["axis"], f"mean {x['split_a']}", f"mean {x['split_b']}", "standardized difference"], top)
  )


def _label_shift_md(y: dict | None) -> str:
  if y is None:
    return ""
  return "\n\n### Label shift\n\n" + _table(
    ["chi-square", "dof", "p-value", "total variation", "flagged"],
    [[y["chi2"], y["dof"], y["p_value"], y["total_variation"], y["flagged"]]],
  )


def _attributes_md(bias: dict, meta: dict, plots: dict) -> str:
  attrs = bias["attributes"]
  if not attrs:
    return f"## Attribute bias\n\n{bias['definition']}\n\nNo metadata attributes given."
  rows = [
    [
      k,
      a["kind"],
      s,
      p["n"],
      p["cramers_v"],
      p["cramers_v_plain"],
      p["mutual_info_bits"],
      p["mutual_info_fraction"],
      p["p_value"],
      p["flagged"],
    ]
    for k, a in attrs.items()
    for s, p in a["splits"].items()
  ]
  text = f"## Attribute bias\n\n{bias['definition']}\n\n" + _table(
    [
      "attribute",
      "kind",
      "split",
      "n",
      "Cramér's V",
      "V plain",
      "MI (bits)",
      "MI / H(label)",
      "chi-square p",
      "flagged",
    ],
    rows,
  )
  for key, a in attrs.items():
    split, table = shown_table(a)
    names = meta["class_names"]
    text += f"\n\n### `{key}` x label ({split})"
    if len(names) <= 20:  # wider tables don't read in Markdown; the heatmap and report.json have them
      text += "\n\n" + _table([key] + names, [[v] + row for v, row in zip(a["values"], table)])
    text += _image(plots, f"attribute:{key}", f"{key} vs label")
  return text


def shown_table(attribute: dict) -> tuple[str, list[list[int]]]:
  """The pooled table when there is one, else the only split's."""
  split = "all" if "all" in attribute["splits"] else next(iter(attribute["splits"]))
  return split, attribute["splits"][split]["table"]
