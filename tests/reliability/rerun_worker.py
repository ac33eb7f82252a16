"""`python -m tests.reliability.rerun_worker JOBS.json RESULTS.json`: several reruns of `jaxflow train`, one
after another in one fresh Python process, each with its own stderr and exit status. With `--serve` instead:
one job per line on stdin (`{"args": [...], "stderr": PATH}`), its exit status a line on stdout.

Why: test_damage reruns ten damaged copies of one run, test_kills lets each chain's killed run finish. As
separate `jaxflow` processes they paid the imports and the tracing each time (~2.3 CPU-s); here once.
What a rerun prints and returns is what the console script's would be: `cli.main` is what `jaxflow` calls
(`sys.exit(main())`), in a plain interpreter (not pytest: no capture of warnings, logging or unraisable
errors), its stderr taken at file descriptor 2 so that C-level writes count too, and before each rerun the
process-wide hooks a run installs (jaxflow's filter of a failed restore's aborted reads: warnings filters,
sys.excepthook, sys.unraisablehook, the asyncio logger's filters) are put back as a new process has them. What
the reruns do share: imports (a message printed while importing lands in the first rerun's stderr, or in this
worker's own, which the caller asserts is empty) and compiled programs.

JOBS.json: [{"args": [flags of `jaxflow train`], "stderr": PATH}, ...]; RESULTS.json: the exit statuses.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import sys
import traceback
import warnings

FRESH_FILTERS = list(warnings.filters)  # as the interpreter started: before any library added its own


def _as_a_new_process() -> None:
  warnings.resetwarnings()  # also starts every module's once-per-location warning registry over
  warnings.filters[:] = FRESH_FILTERS
  sys.excepthook, sys.unraisablehook = sys.__excepthook__, sys.__unraisablehook__
  logging.getLogger("asyncio").filters.clear()


def _status(code) -> int:
  """The exit status `sys.exit(code)` gives a process."""
  if code is None:
    return 0
  if isinstance(code, int):
    return code
  print(code, file=sys.stderr)
  return 1


def rerun(args: list[str], stderr_path: str) -> int:
  from jaxflow import cli

  _as_a_new_process()
  sys.stdout.flush()
  sys.stderr.flush()
  saved = os.dup(1), os.dup(2)
  for fd, path, flags in ((1, os.devnull, os.O_WRONLY), (2, stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
    target = os.open(path, flags, 0o644)
    os.dup2(target, fd)
    os.close(target)
  try:
    try:
      status = _status(cli.main(["jaxflow", "train", *args]))
    except SystemExit as e:
      status = _status(e.code)
    except BaseException:  # what an uncaught exception does to a process: its traceback, exit status 1
      traceback.print_exc()
      status = 1
    gc.collect()  # what a failed restore abandoned is collected now, as at a process's exit, into this stderr
  finally:
    sys.stdout.flush()
    sys.stderr.flush()
    for fd, previous in zip((1, 2), saved):
      os.dup2(previous, fd)
      os.close(previous)
  return status


def main(jobs_path: str, results_path: str) -> None:
  with open(jobs_path) as f:
    jobs = json.load(f)
  statuses = [rerun(job["args"], job["stderr"]) for job in jobs]
  with open(results_path, "w") as f:
    json.dump(statuses, f)


def serve() -> None:
  for line in sys.stdin:
    job = json.loads(line)
    print(rerun(job["args"], job["stderr"]), flush=True)


if __name__ == "__main__":
  serve() if sys.argv[1:] == ["--serve"] else main(*sys.argv[1:])
