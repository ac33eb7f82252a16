"""Studies: verbs that run or read many things and write a report (audit, seeds, tune)."""
