"""Monitoring: what TensorBoard shows for a healthy, an overfitting and a diverging run (scalars, histograms, the
confusion image), as screenshots of TensorBoard itself, with what to look for and the step at which each
warning sign first appears.

  python experiments/monitoring/run.py            # full run: ~3-5 min on 2 shared CPU cores, needs chromium
  python experiments/monitoring/run.py --quick    # seconds; no screenshots (CI has no browser)

Three arms of configs/digits_mlp.py, each through `jaxflow.seeds(config, workdir, seeds=5, vary="all")`: healthy
(the config as it is), overfitting (100 training images, no dropout, 200 epochs) and diverging (Adam at lr 1.0,
333x the config's 3e-3, with `train.stop_on_divergence=False` so the run goes on and TensorBoard shows it all).
Every seed's event files (WORKDIR/tb, written by jaxflow) are read back with TensorBoard's own
`EventAccumulator` (signals.py): the curves, the alerts a monitor would raise and the step each first fires.
Seed 0 of each arm is served by one TensorBoard and photographed with headless Chromium (screens.py).
Writes report.md, results.json, the screenshots and matplotlib PNG plots into --out (default results/).
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import jaxflow  # noqa: E402
from experiments import harness_extras  # noqa: E402
from experiments.common import report, stats, study  # noqa: E402
from experiments.monitoring import figures, meaning, screens, signals  # noqa: E402

QUESTION = "What is an application to monitor training?"
CONFIG = "configs/digits_mlp.py"
HEALTHY, OVERFITTING, DIVERGING = "healthy", "overfitting", "diverging"
# Every step logged (not once per epoch) where the alert is on the training curve: a divergence within the first
# epoch is otherwise one averaged point; one histogram per epoch, so the kernels' evolution has 30 slices.
PER_STEP = ("train.log_every=1", "train.steps_per_dispatch=1", "train.histogram_every=1")
ARMS = {
  HEALTHY: PER_STEP,
  OVERFITTING: ("data.train_examples=100", "model.dropout_rate=0.0", "train.batch_size=25", "train.epochs=200"),
  DIVERGING: ("optim.lr=1.0", "train.stop_on_divergence=False", *PER_STEP),
}
QUICK_BASE = (*harness_extras.QUICK_MLP, f"data.train_examples={harness_extras.QUICK_TRAIN}", "train.histogram_every=1")
# Quick: three arms for the outputs' structure at the price of two sets of compiled programs. The quick
# "overfitting" arm trains exactly as healthy does (a host-side cadence differs, not the program: the compilation
# cache serves it; overfitting needs many epochs, which a quick run cannot have); diverging keeps its lr.
QUICK_ARMS = {
  HEALTHY: QUICK_BASE,
  OVERFITTING: (*QUICK_BASE, "train.class_report_every=1"),
  DIVERGING: (*QUICK_BASE, "optim.lr=1.0", "train.stop_on_divergence=False"),
}
MODE, QUICK_MODE = "vmap", "sequential"  # MLPs: vmap over seeds is faster on CPU; quick: the others' mode
HEADLINE = (
  "final_test_accuracy",
  "best_test_accuracy",
  "final_train_accuracy",
  "accuracy_gap",
  "final_train_loss",
  "final_eval_loss",
  "eval_loss_rise",
  "best_eval_loss_step",
  "peak_loss_ratio",
  "peak_grad_norm",
  "kernel_std_first",
  "kernel_std_final",
  "predicted_classes",
)
ALERTS = ("divergence_step", "grad_spike_step", "overfit_step", "chance_step")
# (metric, arm, resolution, higher is better): each against the healthy arm, seed by seed.
COMPARED = (
  ("accuracy_gap", OVERFITTING, "accuracy", False),
  ("final_test_accuracy", OVERFITTING, "accuracy", True),
  ("eval_loss_rise", OVERFITTING, 0.01, False),
  ("final_test_accuracy", DIVERGING, "accuracy", True),
  ("peak_loss_ratio", DIVERGING, 0.01, False),
  ("peak_grad_norm", DIVERGING, 0.01, False),
  ("kernel_std_final", DIVERGING, 0.001, False),
)


def extract(summary: dict, workdir: str) -> dict:
  """Per seed: what TensorBoard's reader finds in WORKDIR/tb (signals.read_run), curves included (the study
  moves them out of the per-seed rows before results.json is written)."""
  return signals.read_run(workdir, summary)


def run_arms(session: study.Session, quick: bool) -> dict[str, study.ArmResult]:
  """Trains each arm; a seed that failed (a non-finite loss stops any run) is still read from its event files."""
  results = {}
  for name, overrides in (QUICK_ARMS if quick else ARMS).items():
    arm = study.Arm(name, CONFIG, overrides, mode=QUICK_MODE if quick else MODE)
    result = session.run(arm, extract)
    for i, row in enumerate(result.per_seed):
      if row is None and os.path.isdir(os.path.join(result.workdirs[i], "tb")):
        result.per_seed[i] = {**signals.read_run(result.workdirs[i], None), "failed": True}
    results[name] = result
  return results


def probe_default_stop(session: study.Session) -> dict:
  """The diverging config with jaxflow's default `train.stop_on_divergence=True`, one seed: where jaxflow stops
  it, and what its TensorBoard folder then holds (what a person opening TensorBoard on it would see)."""
  overrides = tuple(o for o in ARMS[DIVERGING] if not o.startswith("train.stop_on_divergence"))
  root = os.path.join(session.root, "default_stop")
  rep = jaxflow.seeds(
    session.config(study.Arm("default stop", CONFIG, overrides)), root, seeds=1, mode="sequential", plots=False
  )
  row = rep["sweeps"][0]["seeds"][0]
  with open(os.path.join(row["workdir"], "summary.json")) as f:
    summary = json.load(f)
  tb = os.path.join(row["workdir"], "tb")
  acc = signals.load(tb) if os.path.isdir(tb) else None
  logged = signals.scalars(acc) if acc else {}
  stopped = _stop_step(summary.get("error"))
  at_stop = [v for step, v in logged.get("train/loss", []) if step == stopped]
  return {
    "status": summary.get("status"),
    "stopped_at_step": stopped,
    "stop_loss_logged": bool(at_stop),  # the loss that stopped the run is a TensorBoard point
    "stop_loss": at_stop[-1] if at_stop else None,
    "error": (summary.get("error") or "")[:300],
    "train_loss_events": len(logged.get("train/loss", [])),
    "last_logged_step": logged["train/loss"][-1][0] if logged.get("train/loss") else None,
    "eval_events": len(logged.get("eval/loss", [])),
    "histogram_events": len(signals.kernel_std(acc)) if acc else 0,
  }


def split_curves(results: dict[str, study.ArmResult]) -> dict[str, list]:
  """Moves each seed's curves out of its row (figures draw them; results.json keeps the headline numbers)."""
  return {name: [row.pop("curves") if row else None for row in r.per_seed] for name, r in results.items()}


def _alert(values: list) -> dict:
  fired = [v for v in values if v not in (None, False)]
  steps = [v for v in fired if not isinstance(v, bool)]
  return {"fired": len(fired), "seeds": len(values), "step": stats.mean_ci(steps) if steps else None}


def _stop_step(error: str) -> int | None:
  """The step jaxflow's divergence message names ('training loss 29.06 at step 4 ...')."""
  found = re.search(r"at step (\d+)", error or "")
  return int(found.group(1)) if found else None


def summarize(results: dict[str, study.ArmResult]) -> dict:
  """Per arm: mean and CI of every headline number; per alert, how many seeds raised it and at which step."""
  return {
    name: {
      **{k: stats.mean_ci(r.values(k)) for k in HEADLINE},
      "alerts": {a: _alert(r.values(a)) for a in ALERTS},
      "failed_seeds": sum(1 for row in r.per_seed if row is None or row.get("failed")),
    }
    for name, r in results.items()
  }


def differences(results: dict[str, study.ArmResult]) -> list[dict]:
  base = results[HEALTHY]
  rows = []
  for metric, arm, resolution, higher in COMPARED:
    if arm not in results:
      continue
    res = base.resolution if resolution == "accuracy" else resolution
    rows.append(
      stats.compare(
        metric, arm, results[arm].values(metric), HEALTHY, base.values(metric), resolution=res, higher_is_better=higher
      )
    )
  return rows


def headline_table(s: dict) -> report.Table:
  keys = ("final_test_accuracy", "final_train_accuracy", "accuracy_gap", "final_train_loss", "final_eval_loss")
  keys += ("eval_loss_rise", "peak_loss_ratio", "peak_grad_norm", "kernel_std_first", "kernel_std_final")
  rows = [[name, *(report.cell(v[k]) for k in keys), report.cell(v["predicted_classes"], 1)] for name, v in s.items()]
  header = [
    "run",
    "test accuracy",
    "train accuracy (last epoch)",
    "train - test accuracy",
    "train loss (last epoch)",
    "eval loss",
    "eval loss over its best - 1",
    "peak train loss / first",
    "peak grad norm",
    "kernel std, first histogram",
    "kernel std, last histogram",
    "classes predicted",
  ]
  note = (
    "Mean [95% t-CI] over seeds, every number read from the run's TensorBoard events with EventAccumulator "
    "(classes predicted: the columns of the final confusion matrix, the confusion image, that are not empty)."
  )
  return report.Table("What the event files hold at the end of each run", header, rows, note)


def alert_table(s: dict) -> report.Table:
  names = {
    "divergence_step": "divergence (train loss > 10x its first or not finite; jaxflow's stop rule)",
    "grad_spike_step": "gradient spike (grad norm > 10x its first or not finite)",
    "overfit_step": "overfitting (eval loss 10% above its best at 3 evaluations in a row, train loss lower)",
    "chance_step": "stuck at chance (eval loss within 0.05 of ln 10 at 3 evaluations in a row)",
  }
  rows = []
  for name, v in s.items():
    for alert, label in names.items():
      a = v["alerts"][alert]
      step = report.cell(a["step"], 1) if a["step"] else "-"
      rows.append([name, label, f"{a['fired']} of {a['seeds']}", step])
  note = "The step is the logged step at which the rule first holds (mean [95% t-CI] over the seeds where it fired)."
  return report.Table("The alerts a monitor would raise, and when", ["run", "alert", "seeds", "first step"], rows, note)


def logdir_of_seed0(session: study.Session, results: dict[str, study.ArmResult]) -> str:
  """A TensorBoard logdir with one run per arm: a copy of seed 0's event files (runs named by arm)."""
  logdir = os.path.join(session.root, "tb_logdir")
  for name, r in results.items():
    os.makedirs(os.path.join(logdir, name), exist_ok=True)
    for f in glob.glob(os.path.join(r.workdirs[0], "tb", "events*")):
      shutil.copy(f, os.path.join(logdir, name))
  return logdir


def screenshots(session: study.Session, results: dict, out: str, quick: bool) -> tuple[list, list, str]:
  """([(title, file)], records, why none) of TensorBoard's screenshots; none in --quick or without Chromium."""
  if quick:
    return [], [], "--quick: no screenshots (CI has no browser)"
  if not screens.available():
    return [], [], "no Chromium on this machine: no screenshots"
  files, records = screens.take(logdir_of_seed0(session, results), list(results), out)
  return files, records, ""


def main(argv: list[str] | None = None) -> dict:
  args = study.parse_args(__file__, argv, description=__doc__.splitlines()[0])
  with study.session(args) as session:
    results = run_arms(session, args.quick)
    probe = None if args.quick else probe_default_stop(session)
    shots, shot_records, no_shots = screenshots(session, results, args.out, args.quick)
    curves = split_curves(results)
    s = summarize(results)
    diffs = differences(results)
    plot_files = figures.draw(args.out, curves, s)
    facts = {
      "title": "Monitoring: what TensorBoard shows for a healthy, an overfitting and a diverging run",
      "question": QUESTION,
      "answer": meaning.answer(s, probe),
      "command": args.command,
      "quick": args.quick,
      "seeds": args.seeds,
      "setup": meaning.setup(args, QUICK_ARMS if args.quick else ARMS, QUICK_MODE if args.quick else MODE),
      "arms": {name: study.arm_facts(r) for name, r in results.items()},
      "differences": diffs,
      "plots": shots + plot_files,
      "screenshots": shot_records,
      "screenshots_skipped": no_shots,
      "meaning": meaning.paragraphs(s, diffs, probe, shots),
      "caveats": meaning.caveats(args, no_shots),
      "findings": {"summary": s, "default_stop": probe},
      "provenance": session.clock.finish(),
    }
  diff_note = "Each arm - healthy, seed by seed (the arms share seed indices: the same init and data-order streams)."
  diff_tables = [report.difference_table("Each run type - healthy, seed by seed", diffs, note=diff_note)]
  shown = report.write(args.out, facts, [headline_table(s), alert_table(s)], diff_tables)
  print(shown["answer"])
  return shown


if __name__ == "__main__":
  main()
