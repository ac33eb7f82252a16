"""Hyperparameters are not independent: lr x epochs, lr x batch size and dropout x batch size on the digits MLP,
each surface a grid of cells trained with 5 paired seeds; how much of each surface is interaction, and which
part of it one combined variable (lr x steps) or the accuracy scale explains.

  python experiments/hyperparameters/run.py            # full run: 22 cells of 5 seeds (see GRID)
  python experiments/hyperparameters/run.py --quick    # seconds; the same outputs' structure

Every cell is configs/digits_mlp.py (Adam) with a CONSTANT lr and no warmup, `optim.lr`, `train.batch_size`,
`model.dropout_rate` and GRID's epochs, trained through `jaxflow.seeds(config, workdir, seeds=5, mode="vmap")`:
the 5 seeds of a cell are one vmapped program, and seed i of every cell shares its streams (paired). Why a
constant lr: then an E-epoch run is exactly the first E epochs of a longer one (same steps, same data order;
checked by one extra cell, PREFIX), so the lr x epochs surface is read off each lr cell's per-epoch test
accuracy (metrics.jsonl) instead of one compile per epoch count. The lr x batch and dropout x batch surfaces
are each cell's final test accuracy. Writes report.md, results.json and PNG heatmaps into --out.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from experiments import harness_extras  # noqa: E402
from experiments.common import report, stats, study  # noqa: E402
from experiments.hyperparameters import analysis, figures, meaning  # noqa: E402

QUESTION = (
  '"hyperparameters are not independent": lr × epochs and dropout × batch size (and lr × batch size) surfaces '
  "measured on a grid with seeds; where the interaction is explainable and where not."
)
CONFIG = "configs/digits_mlp.py"
TRAIN_SIZE, QUICK_TRAIN = 1437, harness_extras.QUICK_TRAIN
COMMON = ("optim.schedule=constant", "optim.warmup_steps=0")
# Four learning rates ~4.6x apart (2 decades) and three batch sizes 8x apart (89, 11 and 1 steps per epoch): if the
# linear scaling rule held, the best lr would move about 1.4 rows per batch column. The dropout surface runs at one lr
# of the lr grid and shares its dropout-0.1 column (the config's dropout) with the lr x batch surface.
# Cost: 12 + 9 cells + PREFIX, each one compile of its vmapped program (8-50 s on 2 cores, by load) plus its training
# (the batch-16 cells train longest: 1,780 steps). Why 3 batch sizes, not 4: a 4x4 + 4x4 grid (29 cells) ran at
# ~80 s a cell on the shared machine (load 10-19), over 35 minutes; 22 cells keep the span (16 to 1024).
GRID = {
  "lrs": (3e-4, 1.5e-3, 7e-3, 3e-2),
  "batches": (16, 128, 1024),
  "dropouts": (0.0, 0.1, 0.3, 0.5),
  "base_dropout": 0.1,
  "dropout_lr": 1.5e-3,
  "epochs": 20,
  "epoch_cols": (1, 3, 7, 20),
  "main_batch": 128,
  "prefix": (1.5e-3, 128, 3),  # lr, batch, epochs of the extra cell that checks the prefix claim
}
QUICK_GRID = {
  "lrs": (1e-3, 1e-2),
  "batches": (harness_extras.QUICK_BATCH,),
  "dropouts": (0.1,),
  "base_dropout": 0.1,
  "dropout_lr": 1e-3,
  "epochs": 2,
  "epoch_cols": (1, 2),
  "main_batch": harness_extras.QUICK_BATCH,
  "prefix": None,
}
# Quick: two cells (user CPU ~20 s, most of it their two compiles), the shared tiny model and batch (QUICK_GRID), two
# epochs (the same epoch program; lr x epochs needs 2 columns) and one step per dispatch: the cell lr=0.001 is then
# the optimizers study's quick adam program, which a shared compilation cache serves.
QUICK = (*harness_extras.QUICK_MLP_MODEL, f"data.train_examples={QUICK_TRAIN}", "train.steps_per_dispatch=1")
CHANCE = 0.1  # a diverged seed (stopped, no final accuracy) counts as guessing 1 of 10 digits in the surfaces


def cell_name(lr: float, batch: int, dropout: float, epochs: int | None = None) -> str:
  return f"lr={lr:g} batch={batch} dropout={dropout:g}" + (f" epochs={epochs}" if epochs else "")


def extract(summary: dict, workdir: str) -> dict:
  """Per seed: final test accuracy (None when diverged), the test accuracy after every epoch, and the seconds
  the cell's program took to compile (the same for every seed of one vmapped group)."""
  curve = []
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    for line in f:
      row = json.loads(line)
      if row.get("split") == "eval" and "accuracy" in row:
        curve.append(row["accuracy"])
  final = summary["final"]["eval"].get("accuracy")
  ok = final is not None and final == final
  return {"accuracy": final if ok else None, "curve": curve, "compile_seconds": summary.get("compile_seconds")}


def cells_of(grid: dict) -> list[tuple[float, int, float]]:
  lr_cells = [(lr, b, grid["base_dropout"]) for b in grid["batches"] for lr in grid["lrs"]]
  dropout_cells = [(grid["dropout_lr"], b, d) for b in grid["batches"] for d in grid["dropouts"]]
  return list(dict.fromkeys(lr_cells + dropout_cells))


def run_cells(session: study.Session, grid: dict, quick: bool) -> tuple[dict, study.ArmResult | None]:
  """Every cell {(lr, batch, dropout): ArmResult}, and the prefix-check cell (full run only)."""
  mode = "sequential" if quick else "vmap"  # quick: sequential, the tiny programs other studies' quick runs compile
  size = QUICK if quick else ()
  out = {}
  for lr, batch, dropout in cells_of(grid):
    overrides = (*COMMON, *size, f"optim.lr={lr}", f"train.batch_size={batch}", f"model.dropout_rate={dropout}")
    arm = study.Arm(cell_name(lr, batch, dropout), CONFIG, (*overrides, f"train.epochs={grid['epochs']}"), mode=mode)
    out[(lr, batch, dropout)] = session.run(arm, extract)
  prefix = None
  if grid["prefix"]:
    lr, batch, epochs = grid["prefix"]
    d = grid["base_dropout"]
    overrides = (*COMMON, f"optim.lr={lr}", f"train.batch_size={batch}", f"model.dropout_rate={d}")
    arm = study.Arm(cell_name(lr, batch, d, epochs), CONFIG, (*overrides, f"train.epochs={epochs}"), mode=mode)
    prefix = session.run(arm, extract)
  return out, prefix


def _at(result: study.ArmResult, epoch: int | None) -> tuple[list[float], int]:
  """Test accuracy per seed after `epoch` (None: the final one); diverged seeds as CHANCE, and how many."""
  vals, failed = [], 0
  for row in result.per_seed:
    curve = (row or {}).get("curve") or []
    value = (row or {}).get("accuracy") if epoch is None else (curve[epoch - 1] if len(curve) >= epoch else None)
    ok = value is not None and value == value and (epoch is not None or row.get("accuracy") is not None)
    vals.append(float(value) if ok else CHANCE)
    failed += not ok
  return vals, failed


def _surface(name, row_name, rows, col_name, cols, get, combined=None, log_rows=False) -> dict:
  """A [rows, cols, seeds] surface; get(row, col) -> (per-seed values, failed seeds)."""
  got = [[get(r, c) for c in cols] for r in rows]
  return {
    "name": name,
    "row_name": row_name,
    "col_name": col_name,
    "rows": list(rows),
    "cols": list(cols),
    "values": [[v for v, _ in line] for line in got],
    "failed": sum(f for line in got for _, f in line),
    "combined": combined,
    "log_rows": log_rows,
  }


def surfaces(cells: dict, grid: dict, train_size: int) -> dict:
  """lr x epochs at every batch size (the main one at grid['main_batch']), lr x batch and dropout x batch."""
  lrs, batches, d, epochs = grid["lrs"], grid["batches"], grid["base_dropout"], grid["epochs"]
  out = {}
  for b in batches:
    steps = train_size // b
    out[f"lr x epochs (batch {b})"] = _surface(
      f"lr x epochs (batch {b})",
      "lr",
      lrs,
      "epochs",
      grid["epoch_cols"],
      lambda lr, e, b=b: _at(cells[(lr, b, d)], e),
      combined=[[lr * e * steps for e in grid["epoch_cols"]] for lr in lrs],
      log_rows=True,
    )
  out["lr x batch"] = _surface(
    f"lr x batch ({epochs} epochs)",
    "lr",
    lrs,
    "batch",
    batches,
    lambda lr, b: _at(cells[(lr, b, d)], None),
    combined=[[lr * epochs * (train_size // b) for b in batches] for lr in lrs],
    log_rows=True,
  )
  out["dropout x batch"] = _surface(
    f"dropout x batch (lr {grid['dropout_lr']:g}, {epochs} epochs)",
    "dropout",
    grid["dropouts"],
    "batch",
    batches,
    lambda dr, b: _at(cells[(grid["dropout_lr"], b, dr)], None),
  )
  return out


def differences(shapes: dict, analyzed: dict, resolution: float | None, main: str) -> list[dict]:
  """Per surface (lr x epochs at the main batch, lr x batch, dropout x batch): at each end column, the row best
  there against the row best at the other end; then the corner interaction contrast."""
  rows = []
  for key in (main, "lr x batch", "dropout x batch"):
    s, a = shapes[key], analyzed[key]
    last = len(s["cols"]) - 1
    if last < 1:
      continue
    rows += [analysis.cost_of_other_best(s, a, resolution, 0, last)]
    rows += [analysis.cost_of_other_best(s, a, resolution, last, 0)]
    rows += [analysis.contrast(s, resolution)]
  return [r for r in rows if r is not None]


def prefix_check(cells: dict, prefix: study.ArmResult | None, grid: dict) -> dict | None:
  """The claim behind reading epochs off the curves: a constant-lr run of E epochs ends where the longer run stood
  after E epochs. Max |difference| of the per-seed test accuracies (0: the same predictions' accuracy)."""
  if prefix is None:
    return None
  lr, batch, epochs = grid["prefix"]
  longer, _ = _at(cells[(lr, batch, grid["base_dropout"])], epochs)
  alone, _ = _at(prefix, None)
  diffs = [abs(a - b) for a, b in zip(alone, longer, strict=True)]
  return {"cell": prefix.arm.name, "epochs": epochs, "alone": alone, "prefix": longer, "max_abs_diff": max(diffs)}


def arms_facts(cells: dict, prefix) -> dict:
  facts = {}
  for r in [*cells.values(), *([prefix] if prefix else [])]:
    f = study.arm_facts(r)
    f["per_seed"] = [None if row is None else {k: v for k, v in row.items()} for row in r.per_seed]
    facts[r.arm.name] = f
  return facts


def main(argv: list[str] | None = None) -> dict:
  args = study.parse_args(__file__, argv, description=__doc__.splitlines()[0])
  grid = QUICK_GRID if args.quick else GRID
  train_size = QUICK_TRAIN if args.quick else TRAIN_SIZE
  main_key = f"lr x epochs (batch {grid['main_batch']})"
  with study.session(args) as session:
    cells, prefix = run_cells(session, grid, args.quick)
    resolution = next(iter(cells.values())).resolution
    shapes = surfaces(cells, grid, train_size)
    analyzed = {k: analysis.analyze(s, resolution) for k, s in shapes.items()}
    diffs = differences(shapes, analyzed, resolution, main_key)
    checked = prefix_check(cells, prefix, grid)
    compiles = stats.mean_ci([r.per_seed[0]["compile_seconds"] for r in cells.values() if r.per_seed[0]])
    plot_files = figures.draw(args.out, shapes, analyzed, main_key, grid)
    facts = {
      "title": "Hyperparameters are not independent: lr x epochs, lr x batch size, dropout x batch size",
      "question": QUESTION,
      "answer": meaning.answer(analyzed, main_key),
      "command": args.command,
      "quick": args.quick,
      "seeds": args.seeds,
      "setup": meaning.setup(args, grid, len(cells) + (prefix is not None), COMMON, QUICK, compiles),
      "arms": arms_facts(cells, prefix),
      "differences": diffs,
      "plots": plot_files,
      "meaning": meaning.paragraphs(analyzed, main_key, grid, checked, diffs),
      "caveats": meaning.caveats(args, grid, analyzed, checked),
      "findings": {
        "surfaces": {k: _json_ready(a) for k, a in analyzed.items()},
        "prefix_check": checked,
        "compile_seconds_per_cell": compiles,
      },
      "provenance": session.clock.finish(),
    }
  paired = [report.difference_table("Paired over seeds (a - b), test accuracy", diffs)]
  shown = report.write(args.out, facts, meaning.tables(analyzed, main_key), paired)
  print(shown["answer"])
  return shown


def _json_ready(analyzed: dict) -> dict:
  """The analysis without numpy arrays (the residual matrix is left out; the cells hold the means)."""
  out = dict(analyzed)
  for key in ("interaction", "interaction_log_error"):
    if out.get(key):
      out[key] = {k: v for k, v in out[key].items() if k != "residual"}
  return json.loads(json.dumps(out, default=lambda v: v.tolist() if isinstance(v, np.ndarray) else float(v)))


if __name__ == "__main__":
  main()
