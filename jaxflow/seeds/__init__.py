"""`jaxflow seeds`: many seeds of one config, and what the seeds change.

- `sweeps`: which streams a sweep varies and each seed's config and workdir;
- `mode_choice`: how the seeds are trained (vmap, sequential, devices), timed on this machine and cached;
- `study`: the verb, `run_seeds(config, workdir, ...)`;
- `determinism`: what is and is not bitwise reproducible, checked;
- `stats`, `report`, `compare`: summaries with confidence intervals, the report, `seeds compare A B`.
"""

from jaxflow.seeds.study import run_seeds

__all__ = ["run_seeds"]
