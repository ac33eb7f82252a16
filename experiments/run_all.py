"""Regenerates every study and the index, experiments/README.md.

  python experiments/run_all.py                   # every ported study's full run (results/ beside each), the index
  python experiments/run_all.py --quick           # every ported study's --quick run into a temporary folder
                                                  # (the committed results stay), and an index there
  python experiments/run_all.py --index-only      # the index from the results on disk, nothing run
  python experiments/run_all.py --only data_size  # one study (repeatable), then the index

A study is a folder `experiments/<name>/` with a `run.py`; it is *ported* when run.py uses the harness
(`experiments.common`) and so takes --quick / --out and writes results/results.json. Each runs in its own
process (JAX keeps one compilation cache per process; a study's flags and imports stay its own), one after
another (the machine has 2 cores). A study not yet ported is not run: the index lists it with its old results
and "not yet ported". A study that fails is reported and the others still run; the exit status says so.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SKIP = ("common",)
OLD_RESULTS = ("results/report.md", "results/results.md", "results/README.md")


def studies() -> list[str]:
  return sorted(
    name for name in os.listdir(HERE) if name not in SKIP and os.path.isfile(os.path.join(HERE, name, "run.py"))
  )


def ported(name: str) -> bool:
  with open(os.path.join(HERE, name, "run.py")) as f:
    return "experiments.common" in f.read()


def run(name: str, out: str | None, quick: bool) -> bool:
  command = [sys.executable, os.path.join(HERE, name, "run.py"), *(["--quick"] if quick else [])]
  command += ["--out", out] if out else []
  print(f"== {name}: {' '.join(command[1:])}", flush=True)
  start = time.perf_counter()
  done = subprocess.run(command, cwd=os.path.dirname(HERE))
  print(f"== {name}: exit {done.returncode} after {time.perf_counter() - start:.0f} s", flush=True)
  return done.returncode == 0


def _question(name: str) -> str:
  """An unported study's question: the first sentence of its run.py docstring."""
  with open(os.path.join(HERE, name, "run.py")) as f:
    text = f.read()
  doc = text.split('"""')[1] if text.lstrip().startswith('"""') else name
  first = " ".join(doc.split())
  end = min((i for i in (first.find("?"), first.find(". ")) if i >= 0), default=len(first) - 1)
  return first[: end + 1]


def _duration(seconds: float, provenance: dict) -> str:
  """'9.4 min (load 6.0-9.6)': the wall time and the 1-minute load average when the run started and ended."""
  shown = f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"
  before, after = provenance.get("load_before"), provenance.get("load_after")
  if not before:
    return shown
  return shown + f" (load {before[0]:.1f}" + (f"-{after[0]:.1f})" if after else ")")


def row(name: str, results_dir: str, index_dir: str) -> list[str]:
  """One index row: question, one-line answer, link, command, run time."""
  path = os.path.join(results_dir, "results.json")
  if ported(name) and os.path.isfile(path):
    with open(path) as f:
      r = json.load(f)
    link = os.path.relpath(os.path.join(results_dir, "report.md"), index_dir)
    answer = r["answer"] + (" *(quick run)*" if r.get("quick") else "")
    return [
      r["question"],
      answer,
      f"[report]({link})",
      f"`{r['command']}`",
      _duration(r["wall_seconds"], r.get("provenance") or {}),
    ]
  old = next((p for p in OLD_RESULTS if os.path.isfile(os.path.join(HERE, name, p))), None)
  link = f"[old results]({os.path.relpath(os.path.join(HERE, name, old), index_dir)})" if old else "-"
  status = "not yet ported" if not ported(name) else "no results yet"
  return [_question(name), status, link, f"`python experiments/{name}/run.py`", "-"]


def index(names: list[str], results_dir_of, index_dir: str) -> str:
  lines = [
    "# Experiments",
    "",
    "One folder per workflow question. The standard (issue 20): `experiments/<name>/run.py` uses jaxflow's public",
    "API only and writes `results/report.md` (the question verbatim, the command, the setup, mean and 95% CI over",
    ">= 5 seeds through `jaxflow.seeds`, paired differences where arms share seeds, PNG plots, what it means and",
    "its caveats) and `results/results.json`; a full run takes <= 10 min on 2 cores, `--quick` seconds. A",
    "difference below the metric's resolution, or whose 95% CI contains 0, is a tie. The shared harness is",
    "`experiments/common/`; `python experiments/run_all.py` reruns every study and rewrites this index",
    "(`--index-only` rewrites the index alone). Run times are the recorded full runs' on a shared 2-core machine,",
    "with its 1-minute load average when they started and ended (2 means both cores busy).",
    "",
    "| question | measured answer | link | command | run time |",
    "|---|---|---|---|---|",
  ]
  for name in names:
    cells = row(name, results_dir_of(name), index_dir)
    lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
  return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="quick runs into a temporary folder, index there")
  parser.add_argument("--index-only", action="store_true", help="rewrite the index from the results on disk")
  parser.add_argument("--only", action="append", default=None, help="run only this study (repeatable)")
  parser.add_argument("--out", default=None, help="with --quick: the folder for the outputs (default: temporary)")
  args = parser.parse_args(argv)
  names = studies()
  unknown = [n for n in args.only or [] if n not in names]
  if unknown:
    parser.error(f"--only={unknown[0]!r} is not a study; studies: {', '.join(names)}")
  root = (args.out or tempfile.mkdtemp(prefix="jaxflow_experiments_")) if args.quick else None

  def results_dir_of(name: str) -> str:
    return os.path.join(root, name) if root else os.path.join(HERE, name, "results")

  failed = []
  if not args.index_only:
    for name in args.only or names:
      if ported(name) and not run(name, results_dir_of(name) if root else None, args.quick):
        failed.append(name)
  index_path = os.path.join(root or HERE, "README.md")
  with open(index_path + ".tmp", "w") as f:
    f.write(index(names, results_dir_of, os.path.dirname(index_path)))
  os.replace(index_path + ".tmp", index_path)
  print(f"index: {index_path}" + (f"; failed: {', '.join(failed)}" if failed else ""))
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
