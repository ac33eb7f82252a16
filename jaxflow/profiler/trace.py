"""`--trace`: a jax.profiler trace of profiled steps, for TensorBoard's profile plugin, XProf or Perfetto.

`write_trace(logdir, steps)` runs each (label, callable) once inside `jax.profiler.trace(logdir)`,
each under a `StepTraceAnnotation` (so the profile plugin's step view shows them as steps) and
synchronized (`block_until_ready`), after one untimed call outside the trace (so compilation does not
fill it). jax writes `LOGDIR/plugins/profile/<timestamp>/<host>.xplane.pb` (TensorBoard / XProf) and
`<host>.trace.json.gz` (Chrome trace format: Perfetto, chrome://tracing).

Open it:
  pip install -e ".[profile]"            # tensorboard-plugin-profile (pulls xprof): an optional extra
  tensorboard --logdir WORKDIR/trace      # the PROFILE tab
  or drag WORKDIR/trace/plugins/profile/<ts>/*.trace.json.gz onto https://ui.perfetto.dev
"""

from __future__ import annotations

import glob
import gzip
import json
import os
from collections.abc import Callable

import jax

HOW_TO_OPEN = (
  'pip install -e ".[profile]" && tensorboard --logdir {logdir}  (PROFILE tab); '
  "or open {logdir}/plugins/profile/<timestamp>/*.trace.json.gz in https://ui.perfetto.dev"
)


def write_trace(logdir: str, steps: list[tuple[str, Callable]]) -> dict:
  """Traces each step once (see module docstring); returns the files written and what they hold."""
  for _, fn in steps:  # compile and warm outside the trace
    jax.block_until_ready(fn())
  os.makedirs(logdir, exist_ok=True)
  before = set(glob.glob(os.path.join(logdir, "plugins", "profile", "*")))
  with jax.profiler.trace(logdir):
    for i, (label, fn) in enumerate(steps):
      with jax.profiler.StepTraceAnnotation(label, step_num=i):
        jax.block_until_ready(fn())
  runs = sorted(set(glob.glob(os.path.join(logdir, "plugins", "profile", "*"))) - before)
  files = sorted(p for run in runs for p in glob.glob(os.path.join(run, "*")))
  return {
    "logdir": logdir,
    "steps": [label for label, _ in steps],
    "files": [os.path.relpath(p, logdir) for p in files],
    "events": trace_events(files),
    "open": HOW_TO_OPEN.format(logdir=logdir),
  }


def trace_events(files: list[str]) -> int | None:
  """Events in the written Chrome-format trace (it parses, and is not empty), or None if absent."""
  for path in files:
    if path.endswith(".trace.json.gz"):
      with gzip.open(path, "rt") as f:
        return len(json.load(f).get("traceEvents", []))
  return None
