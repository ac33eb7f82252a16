"""The dataset audit: what in the data itself can make a test score lie, found before any model is trained.

This package owns the whole audit, from the checks to the verb:
- `splits` (`AuditSplit`, `AuditThresholds`: what the checks are given, and the views they share),
  `balance`, `duplicates` (with the `near_duplicates` search and conflicting labels), `shift`, `bias`
  (metadata associated with the label, scored by `statistics`: Cramér's V, chi-square, mutual
  information) and `findings` (one sentence per flagged problem): the checks on plain numpy splits;
- `checks.audit`: every check run and collected into one JSON-serializable report;
- `report.write_report` (report.json, report.md from `markdown`, plots/*.png from `plots`);
- `run.run_audit`: `jaxflow audit`, the configured dataset loaded as training would see it, audited and
  written into a workdir.

`jaxflow.audit` is also the API function `jaxflow.audit(config, workdir)` (jaxflow/__init__.py), and
importing this package rebinds the attribute `jaxflow.audit` to the package; so the package itself is
callable as that function (`_CallablePackage`), and `jaxflow.audit(config, workdir)` works before and after.
"""

import sys
import types

from jaxflow.audit.checks import audit
from jaxflow.audit.markdown import markdown
from jaxflow.audit.report import write_report
from jaxflow.audit.run import run_audit
from jaxflow.audit.splits import AuditSplit, AuditThresholds
from jaxflow.audit.statistics import association, cramers_v

__all__ = [
  "AuditSplit",
  "AuditThresholds",
  "association",
  "audit",
  "cramers_v",
  "markdown",
  "run_audit",
  "write_report",
]


class _CallablePackage(types.ModuleType):
  """This package, callable as `jaxflow.audit(config, workdir)` (see the module docstring)."""

  def __call__(self, config, workdir: str) -> dict:
    """Audits the dataset `config` describes (as training would see it) into `workdir`; returns the report."""
    return run_audit(config, workdir)


sys.modules[__name__].__class__ = _CallablePackage
