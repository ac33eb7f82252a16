"""The experiments/ standard's harness: what every `experiments/<name>/run.py` shares.

One job per module:
- `study`: the common flags (--quick, --out, --seeds, --workdir) and the arms: each arm one config trained
  through `jaxflow.seeds`, every arm with the same seed indices, so arms are paired seed by seed;
- `stats`: mean and 95% t-interval over seeds, paired differences, and the tie rule;
- `report`: report.md and results.json with the facts every study states (question, command, setup, tables,
  differences, plots, what it means, provenance); `provenance`: the commit, machine and load of a run;
- `plots`: matplotlib figures without pyplot (Agg), saved as PNG beside the report.

A study imports it as `experiments.common` with the repository root on sys.path (run.py puts it there, as
it does for jaxflow), and touches jaxflow through its public API only (`jaxflow.load_config`, `jaxflow.seeds`,
`jaxflow.export`, `jaxflow.load_model`, ...).
"""
