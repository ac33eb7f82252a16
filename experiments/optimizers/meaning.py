"""The study's words: the one-line answer, the setup, what it means and the caveats, written from the numbers so
that a rerun that measures something else says something else."""

from __future__ import annotations

from experiments.common import report


def _rank(summaries: dict, key: str, reverse: bool) -> list[str]:
  have = [n for n in summaries if summaries[n][key]["mean"] is not None]
  return sorted(have, key=lambda n: summaries[n][key]["mean"], reverse=reverse)


def answer(summaries: dict, diffs: list[dict], target: float) -> str:
  f = report.fmt
  best = _rank(summaries, "accuracy", True)
  fast = _rank(summaries, "steps_to_target", False)
  worse = [
    d["a"].split(" lr=")[0]
    for d in diffs
    if d["comparison"].endswith("best: accuracy") and d["verdict"] == f"{d['b']} better"
  ]
  tied = [
    d["a"].split(" lr=")[0] for d in diffs if d["comparison"].endswith("best: accuracy") and d["verdict"] == "tie"
  ]
  steps = [summaries[n]["seconds_per_step"]["mean"] for n in summaries if summaries[n]["seconds_per_step"]["mean"]]
  parts = [
    "At each one's best lr: "
    + ", ".join(f"{n} {f(summaries[n]['accuracy']['mean'])} (lr {summaries[n]['best_lr']:g})" for n in best),
    f"tie with adam: {', '.join(tied) or 'none'}; worse than adam: {', '.join(worse) or 'none'}",
    f"fewest steps to {target:.0%}: "
    + (", ".join(f"{n} {f(summaries[n]['steps_to_target']['mean'], 0)}" for n in fast[:3]) or "none reached it"),
  ]
  if steps:
    parts.append(f"step time {1000 * min(steps):.2f}-{1000 * max(steps):.2f} ms (5 seeds vmapped)")
  return "; ".join(parts) + "."


def setup(args, epochs: int, target: float, lrs: dict, common, quick) -> list[str]:
  lines = [
    "Model and data: configs/digits_mlp.py (MLP 64-256-256-10, dropout 0.1, batch 128) on the shipped 8x8 digits "
    f"(1437 training, 360 test images), {epochs} epochs (11 steps each), with "
    + " ".join(f"`{o}`" for o in common)
    + ": a constant lr, so the rate in the table is the rate every step used.",
    "Arms: " + "; ".join(f"`optim.name={n}` at lr " + ", ".join(f"{lr:g}" for lr in v) for n, v in lrs.items()) + ". "
    "Three decades each, placed where each rule works: plain-gradient rules and adagrad from 1e-3 to 1, the "
    "RMS-normalized rules (adam, adamw, rmsprop) from 1e-4 to 1e-1. Other optim fields at configs/base.py's "
    "defaults (momentum 0.9 for momentum, nesterov and rmsprop; weight_decay 0) except adamw's "
    "`optim.weight_decay=0.01` (decoupled; PyTorch's AdamW default: with 0, adamw would be adam exactly).",
    f"Every arm: `jaxflow.seeds(config, workdir, seeds={args.seeds}, vary='all', mode="
    f"'{'sequential' if args.quick else 'vmap'}')`; seed i of every arm pins the same init, data order and dropout "
    "streams, so arms are compared seed by seed.",
    f"Convergence: the first epoch whose test accuracy (evaluated after every epoch, metrics.jsonl) reaches "
    f"{target:.0%}, as steps and as seconds (steps x the arm's seconds per step). Time per step: summary.json's "
    "`train_seconds` / `steps` (the training phase, compile excluded) of the vmapped group of 5 seeds.",
  ]
  if args.quick:
    lines.append(f"Quick: two arms with {' '.join(f'`{o}`' for o in quick)} (a few steps; numbers mean nothing).")
  return lines


def _verdicts(diffs: list[dict], comparison: str) -> str:
  rows = [d for d in diffs if d["comparison"] == comparison]
  return "; ".join(f"{d['a']} - {d['b']}: {report.fmt(d['mean'])} ({d['verdict']})" for d in rows) or "not measured"


def paragraphs(summaries: dict, diffs: list[dict], target: float) -> list[str]:
  f = report.fmt
  steps = {n: s["seconds_per_step"]["mean"] for n, s in summaries.items() if s["seconds_per_step"]["mean"]}
  spread = {n: s["std"] for n, s in summaries.items() if s["std"] is not None}
  out = [
    "**Final accuracy and lr dependency.** Paired against adam at its best lr: "
    + _verdicts(diffs, "best lr vs adam's best: accuracy")
    + ". How sharp each optimum is (best lr against one decade away): "
    + _verdicts(diffs, "best lr vs one decade away: accuracy")
    + ". "
    + _lr_sentence(summaries),
    f"**Convergence to {target:.0%}.** Steps to target at the best lr, paired against adam: "
    + _verdicts(diffs, "best lr vs adam's best: steps_to_target")
    + ". Within "
    + "the run's epochs, "
    + ", ".join(f"{n} reached it in {s['reached']} seeds" for n, s in summaries.items())
    + ".",
  ]
  if steps:
    lo, hi = min(steps, key=steps.get), max(steps, key=steps.get)
    out.append(
      f"**Time per step.** From {1000 * steps[lo]:.2f} ms ({lo}) to {1000 * steps[hi]:.2f} ms ({hi}) for five "
      f"vmapped MLPs ({steps[hi] / steps[lo]:.2f}x): the update rule's extra state (one moment for momentum, two "
      "for adam) is a few elementwise operations over 85k parameters, next to the forward and backward pass and one "
      "dispatch per step; on a loaded shared machine, differences inside the CI over each optimizer's lr arms (the "
      "table) are noise, and the cost of reaching the target is set by the steps it takes more than by the step."
    )
  if spread:
    out.append(
      "**Spread over seeds (local minima).** Standard deviation of the final accuracy at the best lr: "
      + ", ".join(f"{n} {f(v, 4)}" for n, v in sorted(spread.items(), key=lambda kv: kv[1]))
      + ". The seeds differ in initial weights, data order and dropout; a standard deviation of one or two test "
      "images (1/360 = 0.0028 each) says the seeds end in equally good solutions, a larger one that how good a "
      "solution it ends in depends on the seed: "
      + (", ".join(n for n, v in spread.items() if v > 2 / 360) or "none here")
      + " spread beyond two test images."
    )
  out.append(
    "**Hyperparameters.** jaxflow's config sets 1 (sgd, adam, adagrad: lr) or 2 (momentum, nesterov, rmsprop: lr and "
    "momentum; adamw: lr and weight_decay) per rule, plus the shared schedule, warmup, weight decay and clipping; "
    "the update rules themselves carry 1 (sgd) to 5 (adamw, rmsprop) numeric hyperparameters, the rest fixed at "
    "optax's defaults. " + _sensitivity(diffs),
  )
  return out


def _lr_sentence(summaries: dict) -> str:
  """Each optimizer's best lr and its accuracy at both ends of its grid, and what follows when the bests differ."""
  f = report.fmt
  ends = []
  for n, s in summaries.items():
    by_lr = s["accuracy_by_lr"]
    low, high = by_lr[min(by_lr, key=float)], by_lr[max(by_lr, key=float)]
    ends.append(
      f"{n} best at {s['best_lr']:g} ({f(low['mean'])} at {min(by_lr, key=float)}, {f(high['mean'])} at "
      f"{max(by_lr, key=float)})"
    )
  bests = {s["best_lr"] for s in summaries.values()}
  tail = (
    " The best rates span "
    f"{max(bests) / min(bests):g}x: the lr that works is a property of the rule, so comparing optimizers at one "
    "shared lr measures the lr, not the optimizer."
    if len(bests) > 1
    else ""
  )
  edge = [n for n, s in summaries.items() if s.get("grid_edge")]
  if edge:
    tail += (
      f" Best at the edge of its grid: {', '.join(edge)}: its optimum may lie beyond the rates tried, so its best "
      "accuracy is a lower bound."
    )
  return "Best lr and the grid's ends: " + "; ".join(ends) + "." + tail


def _sensitivity(diffs: list[dict]) -> str:
  """How many one-decade steps from each optimizer's best lr cost resolved accuracy: a count per optimizer."""
  rows = [d for d in diffs if d["comparison"] == "best lr vs one decade away: accuracy"]
  per = {}
  for d in rows:
    name = d["a"].split(" lr=")[0]
    lost, total = per.get(name, (0, 0))
    per[name] = (lost + (d["verdict"] != "tie"), total + 1)
  shown = ", ".join(f"{n} {lost}/{total}" for n, (lost, total) in per.items())
  return (
    "Sensitivity (one decade from the best lr, neighbours whose accuracy is resolved lower): " + shown + "."
    if per
    else ""
  )


def caveats(args, epochs: int) -> list[str]:
  return [
    f"{args.seeds} seeds; one small model on one easy dataset for {epochs} epochs with a constant lr: rankings on "
    "larger models, longer schedules, or with warmup and decay can differ (the config's own cosine schedule is not "
    "studied here).",
    "Each optimizer's best lr is picked on the test split by the same seeds that report it: its accuracy is slightly "
    "optimistic (a selection bias of the same size for every optimizer).",
    "Four learning rates per optimizer (one per decade): the true optimum can lie between grid points, and a "
    "'tie' may hide a difference a finer grid would resolve.",
    "adamw runs at one decay (0.01, decoupled) and the other rules at none: adamw against adam measures that decay "
    "over 110 steps, not adamw's best; decay is not varied.",
    "Time per step is measured on a shared 2-core machine under load (see Provenance) with one dispatch per step "
    "(`train.steps_per_dispatch=1`, chosen to save compile time): differences between optimizers smaller than the "
    "CI over lr arms are noise. Convergence is resolved to one epoch (11 steps).",
    "Local minima: the spread over seeds cannot tell distinct minima from the same basin reached differently; "
    "it measures how much the final accuracy depends on the seed, which is what a practitioner sees.",
  ]
