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

The package is `auditing` and the verb's function `jaxflow.audit(config, workdir)`: a package named
`audit` would replace that function as an attribute of `jaxflow` once imported (as `training` and `train`).
"""

from jaxflow.auditing.checks import audit
from jaxflow.auditing.markdown import markdown
from jaxflow.auditing.report import write_report
from jaxflow.auditing.run import run_audit
from jaxflow.auditing.splits import AuditSplit, AuditThresholds
from jaxflow.auditing.statistics import association, cramers_v

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
