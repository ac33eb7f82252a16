"""Writes an audit report (`jaxflow.auditing.checks.audit`) as report.json, report.md and plots/*.png.

The two report files go through `jaxflow.workdir.write_report` (atomic: a kill leaves no half-written
file); the Markdown (`markdown`) and the plots (`plots`) are drawn from the report dict alone, so a report
read back from report.json can be rendered again without the data.
"""

from __future__ import annotations

import json
import os

from jaxflow import workdir as workdir_lib
from jaxflow.auditing.markdown import markdown
from jaxflow.auditing.plots import write_plots


def write_report(report: dict, workdir: str) -> dict[str, str]:
  """Writes the report under `workdir`; returns {"json", "markdown", plot name: path} (absolute paths)."""
  workdir = os.path.abspath(workdir)
  plots = write_plots(report, os.path.join(workdir, "plots"))
  json.dumps(report, allow_nan=False, default=workdir_lib.json_default)  # strict JSON: any NaN is a bug to surface
  text = markdown(report, {k: os.path.relpath(p, workdir) for k, p in plots.items()})
  paths = workdir_lib.write_report(workdir, report, text, indent=1)
  return {"json": paths["json"], "markdown": paths["md"], **plots}
