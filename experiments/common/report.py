"""report.md and results.json of a study: the same facts, for people and for programs.

Every report has the same sections, in this order, so a reader (and experiments/run_all.py, and the quick
test) finds them: Question (the workflow's, verbatim), Answer (one line), Command, Setup, Results (tables
of mean and 95% interval over seeds), Paired differences (with the tie rule's verdict), Plots, What it means,
Caveats, Provenance (commit, machine, load, wall time). results.json holds `question`, `answer`, `command`,
`wall_seconds` (what the experiments/README.md index shows) next to the arms, differences and findings.
"""

from __future__ import annotations

import dataclasses
import json
import os

SECTIONS = (
  "Question",
  "Answer",
  "Command",
  "Setup",
  "Results",
  "Paired differences",
  "Plots",
  "What it means",
  "Caveats",
  "Provenance",
)
RESULTS_KEYS = ("question", "answer", "command", "wall_seconds", "quick", "seeds", "arms", "differences", "plots")


@dataclasses.dataclass
class Table:
  title: str
  header: list[str]
  rows: list[list[str]]
  note: str = ""

  def markdown(self) -> list[str]:
    lines = [f"**{self.title}**", "", "| " + " | ".join(self.header) + " |", "|" + "---|" * len(self.header)]
    lines += ["| " + " | ".join(row) + " |" for row in self.rows]
    return lines + (["", self.note] if self.note else [])


def fmt(v, digits: int = 3) -> str:
  return "-" if v is None else f"{v:.{digits}f}"


def cell(summary: dict, digits: int = 3) -> str:
  """'mean [low, high]' of a stats.mean_ci dict."""
  if summary["mean"] is None:
    return "failed"
  ci = summary["ci95"]
  shown = fmt(summary["mean"], digits) + (f" [{fmt(ci[0], digits)}, {fmt(ci[1], digits)}]" if ci else "")
  return shown + (f" ({summary['missing']} failed)" if summary.get("missing") else "")


def difference_text(row: dict | None, digits: int = 3) -> str:
  """One paired difference for a sentence: '+0.063 [+0.033, +0.094] (resolved)', or '(tie)' by the tie rule."""
  if row is None or row["mean"] is None:
    return "not measured"
  ci = row["ci95"]
  interval = f" [{ci[0]:+.{digits}f}, {ci[1]:+.{digits}f}]" if ci else ""
  return f"{row['mean']:+.{digits}f}{interval} ({'tie' if row['verdict'] == 'tie' else 'resolved'})"


def difference_table(title: str, rows: list[dict], digits: int = 3, note: str = "") -> Table:
  """Rows of stats.compare: the difference a - b, its interval, the resolution and the verdict."""
  body = [
    [
      r["comparison"],
      f"{r['a']} - {r['b']}",
      str(r["n"]),
      fmt(r["mean"], digits),
      f"[{fmt(r['ci95'][0], digits)}, {fmt(r['ci95'][1], digits)}]" if r["ci95"] else "-",
      fmt(r["resolution"], 4) if r["resolution"] else "-",
      r["verdict"],
    ]
    for r in rows
  ]
  header = ["comparison", "difference", "seeds", "mean", "95% CI", "resolution", "verdict"]
  rule = "A difference is a tie when |mean| is below the metric's resolution or its 95% CI contains 0."
  return Table(title, header, body, (note + " " + rule).strip())


def markdown(facts: dict, tables: list[Table], differences: list[Table]) -> str:
  p = facts["provenance"]
  m = p["machine"]
  lines = [f"# {facts['title']}", ""]
  lines += ["## Question", "", f"> {facts['question']}", "", "## Answer", "", facts["answer"], ""]
  quick = " (quick: not the committed full run)" if facts["quick"] else ""
  lines += ["## Command", "", f"`{facts['command']}`{quick}"]
  lines += ["", f"Run time: {facts['wall_seconds']:.0f} s on this machine (see Provenance).", "", "## Setup", ""]
  lines += [f"- {line}" for line in facts["setup"]] + ["", "## Results", ""]
  for table in tables:
    lines += [*table.markdown(), ""]
  lines += ["## Paired differences", ""]
  for table in differences:
    lines += [*table.markdown(), ""]
  lines += ["## Plots", ""] + [f"![{title}]({path})\n" for title, path in facts["plots"]]
  lines += ["## What it means", "", *[f"{paragraph}\n" for paragraph in facts["meaning"]]]
  lines += ["## Caveats", "", *[f"- {c}" for c in facts["caveats"]], "", "## Provenance", ""]
  lines += [
    f"- jaxflow commit `{p['commit']}`"
    + (f", with changes in {', '.join(p['changed_files'])}" if p["dirty"] else ", clean tree"),
    f"- started {p['started']}, wall time {p['wall_seconds']:.1f} s, {facts['seeds']} seeds per arm",
    f"- load average (1, 5, 15 min) before {p['load_before']}, after {p['load_after']}",
    f"- JAX compilation cache: {p['compilation_cache']}",
    f"- {m['cpu_count']} CPUs, {m['platform']}, Python {m['python']}, jax {m['jax']}",
  ]
  return "\n".join(lines) + "\n"


def _write(path: str, text: str) -> None:
  """Atomically: a temporary name, then rename, so a reader never sees half a report."""
  tmp = f"{path}.tmp"
  with open(tmp, "w") as f:
    f.write(text)
  os.replace(tmp, path)


def write(out: str, facts: dict, tables: list[Table], differences: list[Table]) -> dict:
  """Writes out/report.md and out/results.json. `facts` holds title, question, answer, command, quick, seeds,
  setup (lines), arms, differences (stats.compare rows), plots ([(title, file)]), meaning (paragraphs),
  caveats, findings (the study's own numbers) and provenance (provenance.Clock.finish())."""
  facts = {**facts, "wall_seconds": facts["provenance"]["wall_seconds"]}
  missing = [k for k in RESULTS_KEYS if k not in facts]
  if missing:
    raise ValueError(f"a study's facts lack {missing}")
  os.makedirs(out, exist_ok=True)
  _write(os.path.join(out, "report.md"), markdown(facts, tables, differences))
  shown = {**facts, "plots": [{"title": t, "file": f} for t, f in facts["plots"]]}
  _write(os.path.join(out, "results.json"), json.dumps(shown, indent=1, sort_keys=False) + "\n")
  return shown
