"""The study's words: the one-line answer, the setup, the tables, what it means and its caveats, all from the
measured surfaces (no number is typed in by hand)."""

from __future__ import annotations

from experiments.common import report

RULE_SLOPES = {"batch": (1.0, 0.5), "epochs": (-1.0, -0.5)}  # linear rule, square-root rule


def _pct(v) -> str:
  return "-" if v is None else f"{100 * v:.0f}%"


def share_text(i: dict | None) -> str:
  """'34% [21%, 47%] (p 0.001; noise alone ~5%)'."""
  if i is None:
    return "n/a (one column)"
  ci = f" [{_pct(i['ci95'][0])}, {_pct(i['ci95'][1])}]" if i.get("ci95") else ""
  p = "" if i.get("p_value") is None else f" (F-test p {i['p_value']:.2g}; noise alone ~{_pct(i['noise_share'])})"
  return f"{_pct(i['share'])}{ci}{p}"


def _best_row(a: dict, j: int) -> str:
  b = a["best_per_column"][j]
  tied = [f"{a['rows'][i]:g}" for i in b["tied"] if i != b["best"]]
  return f"{a['rows'][b['best']]:g}" + (f" (ties: {', '.join(tied)})" if tied else "")


def moves(a: dict) -> str:
  """'best lr 0.0015 at batch 16 -> 0.03 at batch 1024'."""
  if len(a["cols"]) < 2:
    return f"best {a['row_name']} {_best_row(a, 0)}"
  first, last = 0, len(a["cols"]) - 1
  return (
    f"best {a['row_name']} {_best_row(a, first)} at {a['col_name']} {a['cols'][first]:g} -> "
    f"{_best_row(a, last)} at {a['col_name']} {a['cols'][last]:g}"
  )


def slope_text(a: dict) -> str:
  """'+0.45 on the means (per seed +0.40 [+0.10, +0.70])'."""
  s = a.get("slope")
  if not s:
    return "n/a"
  per = s["per_seed"]
  ci = per["ci95"]
  tail = f" (per seed {per['mean']:+.2f} [{ci[0]:+.2f}, {ci[1]:+.2f}])" if ci else ""
  edge = ", an optimum at the grid's edge: a bound" if any(s["at_edge"]) else ""
  return f"{s['slope']:+.2f} on the means{tail}{edge}"


def resolved(i: dict | None) -> bool:
  """An interaction the seeds resolve: the F-test's p below 0.05 and the share above what noise alone gives."""
  return bool(i and i.get("p_value") is not None and i["p_value"] < 0.05 and i["share"] > (i["noise_share"] or 0))


def answer(analyzed: dict, main: str) -> str:
  lr_e, lr_b, d_b = analyzed[main], analyzed["lr x batch"], analyzed["dropout x batch"]
  collapse = lr_b.get("collapse") or {}
  r2 = "" if collapse.get("r2") is None else f"; lr x steps alone explains R^2 {collapse['r2']:.2f} of lr x batch"
  return (
    "Interaction share of the cell means' variance (95% CI over seeds): "
    f"lr x epochs {share_text(lr_e['interaction'])}, "
    f"lr x batch {share_text(lr_b['interaction'])}, dropout x batch {share_text(d_b['interaction'])}; "
    f"{moves(lr_e)}; {moves(lr_b)} (d log lr*/d log batch {slope_text(lr_b)}; linear rule +1, square-root +0.5)"
    f"{r2}; {moves(d_b)}."
  )


def setup(args, grid: dict, cells: int, common, quick, compiles: dict) -> list[str]:
  size = "the quick tiny MLP (`model.widths=(16,)`, 180 training images)" if args.quick else "the 256-256 MLP, 1437"
  lines = [
    f"Model and data: configs/digits_mlp.py ({size} training / 360 test digits), Adam, "
    f"{report.fmt(grid['base_dropout'], 1)} dropout unless the surface varies it; "
    + " ".join(f"`{o}`" for o in common)
    + ": the lr studied is the lr used, at every step.",
    f"Grid: lr {', '.join(f'{v:g}' for v in grid['lrs'])} x batch {', '.join(map(str, grid['batches']))} at dropout "
    f"{grid['base_dropout']:g}; dropout {', '.join(f'{v:g}' for v in grid['dropouts'])} x the same batches at lr "
    f"{grid['dropout_lr']:g}; {grid['epochs']} epochs each; {cells} cells of {args.seeds} seeds.",
    f"lr x epochs: each lr cell's test accuracy after epochs {', '.join(map(str, grid['epoch_cols']))} "
    "(metrics.jsonl): with a constant lr an E-epoch run is the first E epochs of the longer run"
    + (" (checked: see What it means)." if grid["prefix"] else "."),
    "Seeds: `jaxflow.seeds(..., vary='all')`, mode "
    + ("sequential (quick)" if args.quick else "vmap: a cell's seeds train as ONE vmapped program")
    + f"; seed i of every cell shares its streams (paired). Compile seconds per cell: {report.cell(compiles, 1)}. "
    "jaxflow.seeds keeps a cell's lr, dropout and batch size as constants of its program: one compile per cell, "
    "none per seed.",
    "Measures per surface: mean [95% t-CI] per cell; the best row per column and the rows tied with it (paired "
    "tie rule); the two-way additive fit's residual share of the cell means' sum of squares, with a jackknife 95% "
    "CI over seeds, an F-test against the seeds' noise (seeds as blocks) and the share noise alone would give; "
    "the same share on log10(error) (the accuracy scale's ceiling); the interpolated best lr's slope against "
    "log batch / log epochs; R^2 of accuracy as a cubic of log(lr x steps) against the additive fit's R^2.",
    f"A seed stopped as diverged counts as chance ({0.1}) in a surface; the tables say how many.",
  ]
  if args.quick:
    lines.append(f"Quick: {' '.join(f'`{o}`' for o in quick)} (the shared tiny model), 2 epochs, 2 cells.")
  return lines


def _surface_table(a: dict) -> report.Table:
  rows = []
  for i, r in enumerate(a["rows"]):
    line = [f"{a['row_name']}={r:g}"]
    for j in range(len(a["cols"])):
      text = report.cell(a["cells"][i][j])
      best = a["best_per_column"][j]
      line.append(f"**{text}**" if i == best["best"] else (f"{text} (tie)" if i in best["tied"] else text))
    rows.append(line)
  failed = f" {a['failed']} seed-cells diverged (counted as chance)." if a["failed"] else ""
  note = f"Bold: the best {a['row_name']} per column; (tie): not resolved worse than it (paired tie rule).{failed}"
  return report.Table(
    f"Test accuracy: {a['name']}", [a["row_name"], *(f"{a['col_name']}={c:g}" for c in a["cols"])], rows, note
  )


def tables(analyzed: dict, main: str) -> list[report.Table]:
  keys = [main, "lr x batch", "dropout x batch"]
  out = [_surface_table(analyzed[k]) for k in keys]
  rows = []
  for k in [*keys, *(k for k in analyzed if k.startswith("lr x epochs") and k != main)]:
    a = analyzed[k]
    collapse = a.get("collapse") or {}
    rows.append(
      [
        a["name"],
        share_text(a["interaction"]),
        share_text(a["interaction_log_error"]),
        slope_text(a),
        report.fmt(collapse.get("r2"), 2) + " / " + report.fmt(collapse.get("additive_r2"), 2),
        moves(a),
      ]
    )
  header = [
    "surface",
    "interaction share (accuracy)",
    "interaction share (log10 error)",
    "slope of log10 best lr",
    "R^2: lr x steps alone / additive",
    "best row, first -> last column",
  ]
  note = (
    "Interaction share: the additive fit's residual sum of squares over the cell means' total (row + column + "
    "interaction); jackknife 95% CI over seeds; F-test of the interaction against the seeds' noise; 'noise alone': "
    "the share expected with no interaction at all. Slope: of the parabola-interpolated best lr against log10 of the "
    "column (batch: linear rule +1, square-root +0.5; epochs: lr x epochs constant -1), on the means, then per seed."
  )
  out.append(report.Table("How much of each surface is interaction", header, rows, note))
  return out


def paragraphs(analyzed: dict, main: str, grid: dict, checked: dict | None, diffs: list | None = None) -> list[str]:
  lr_e, lr_b, d_b = analyzed[main], analyzed["lr x batch"], analyzed["dropout x batch"]
  out = []
  if checked:
    out.append(
      f"Reading epochs off the curves is exact here: the {checked['epochs']}-epoch cell trained on its own ends at "
      f"the accuracies the 20-epoch cell had after epoch {checked['epochs']} (largest per-seed difference "
      f"{checked['max_abs_diff']:.4f})."
    )
  out.append(_lr_paragraph(lr_e, "epochs"))
  out.append(_lr_paragraph(lr_b, "batch"))
  out += _collapse_paragraph(analyzed, lr_b)
  out.append(_dropout_paragraph(d_b, grid, diffs or []))
  return out


def _collapse_paragraph(analyzed: dict, lr_b: dict) -> list[str]:
  """Where lr x steps explains the lr surfaces (R^2 of one curve at least the additive fit's) and where it does not."""
  collapse = lr_b.get("collapse") or {}
  if collapse.get("r2") is None or collapse.get("additive_r2") is None:
    return []
  per_batch = [
    (a["name"].split("(")[1].rstrip(")"), a["collapse"]["r2"], a["collapse"]["additive_r2"])
    for k, a in analyzed.items()
    if k.startswith("lr x epochs") and (a.get("collapse") or {}).get("additive_r2") is not None
  ]
  listed = "; ".join(f"{name} {r2:.2f} vs {add:.2f}" for name, r2, add in per_batch)
  failing = [name for name, r2, add in per_batch if r2 < add]
  carried = collapse["r2"] >= collapse["additive_r2"]
  along = (
    f"Along the epochs it holds too (lr x epochs, lr x steps alone vs additive R^2: {listed})."
    if not failing
    else f"Along the epochs it is not the whole story (lr x epochs, lr x steps alone vs additive R^2: {listed}; "
    f"the additive fit wins at {', '.join(failing)}): where the collapse plot's curves part, the same lr x steps "
    "reached with another lr ends elsewhere."
  )
  return [
    "Where it is explainable: with a constant lr and a fixed epoch count, lr x steps is proportional to lr / batch "
    f"(the linear scaling rule's variable). As one cubic of log(lr x steps) it explains R^2 {collapse['r2']:.2f} of "
    f"the lr x batch means after the last epoch, against {collapse['additive_r2']:.2f} for lr and batch added: "
    + ("there the combined variable carries the interaction. " if carried else "the additive fit does better. ")
    + along
  ]


def _dropout_paragraph(d_b: dict, grid: dict, diffs: list) -> str:
  """The omnibus F-test and the corner contrast can disagree (one test over all cells, one over four): say both."""
  i = d_b["interaction"]
  contrasts = [r for r in diffs if r["comparison"].startswith("dropout x batch") and "contrast" in r["comparison"]]
  corner = contrasts[0] if contrasts else None
  corner_text = "" if corner is None else f" The corner contrast alone: {report.difference_text(corner)}."
  if resolved(i):
    why = (
      "A candidate explanation, not tested here: small batches already add gradient noise (a regularizer of their "
      f"own) and take many steps, while at the largest batches this fixed lr ({grid['dropout_lr']:g}) leaves the "
      "model under-fitted, where dropout's extra noise slows it more than it regularizes."
    )
  else:
    why = "The F-test over all cells does not resolve an interaction: dropout's effect mostly adds to the batch size's."
  return f"Dropout x batch: {moves(d_b)}; interaction share {share_text(i)}. {why}{corner_text}"


def _lr_paragraph(a: dict, axis: str) -> str:
  """The lr surface against `axis`: does the optimum move, which way, and which scaling rule its slope allows."""
  s = a.get("slope") or {}
  linear, root = RULE_SLOPES[axis]
  ci = (s.get("per_seed") or {}).get("ci95")
  held = ""
  if ci:
    holds = [name for name, v in (("linear", linear), ("square-root", root), ("none", 0.0)) if ci[0] <= v <= ci[1]]
    held = f"; inside the per-seed CI: {', '.join(holds) or 'no rule and not 0'}"
  expected = "larger batches want a larger lr" if axis == "batch" else "fewer epochs want a larger lr"
  seen = "-" if not s else ("yes" if s["slope"] * linear > 0 else "no")
  rule = "linear rule (lr ~ batch)" if axis == "batch" else "lr x epochs constant"
  return (
    f"{a['name']}: {moves(a)}; interaction share {share_text(a['interaction'])}, on log10(error) "
    f"{share_text(a['interaction_log_error'])}. The expected pattern ({expected}) seen: {seen}; the interpolated "
    f"best lr's log-log slope {slope_text(a)} (rules: {rule} {linear:+.0f}, square-root {root:+.1f}){held}."
  )


def caveats(args, grid: dict, analyzed: dict, checked: dict | None) -> list[str]:
  out = [
    "One model (the digits MLP, Adam), one dataset of 1437 training images and a constant lr: with a decaying "
    "schedule (the config's cosine) the epoch count also sets how fast the lr falls, another interaction this "
    "study does not measure.",
    "Grids of 4 lrs (~4.6x apart) and 3 batch sizes (8x apart): the best lr is known to a factor of ~4.6 before "
    "interpolation; an optimum at the grid's edge makes its slope a bound, and the jackknife CI of a share from 5 "
    "seeds is rough.",
    "The best cells are picked on the test split the table reports (optimistic by the selection), and accuracy "
    "near 98% has little room: compare the shares on accuracy and on log10(error) before calling an interaction "
    "real.",
    f"The dropout surface runs at one lr ({grid['dropout_lr']:g}) for every batch size: part of its interaction is "
    "the lr x batch interaction seen through dropout (the lr x batch table shows how far that lr is from each "
    "batch size's best).",
    "Run time: each cell is its own compiled program (the lr and dropout are constants in it). The grid was first "
    "4 batch sizes (16, 64, 256, 1024; 29 cells): on the shared machine (load 10-19) its cells took 80-120 s each, "
    "so it was stopped after two and cut to 3 batch sizes (22 cells). The recorded wall time is at the load in "
    "Provenance; on an idle 2-core machine a cell compiles in ~8-20 s.",
  ]
  if args.quick:
    out.insert(0, "Quick run: a tiny model, a few steps and 2 seeds: the structure of the outputs, not an answer.")
  return out
