"""benchmarks/input_pipeline.py's report: its measurements summarized (medians, ratios, augmentation's share of a
step) and written as the Markdown table benchmarks/README.md shows."""

from __future__ import annotations

import statistics

import jax

CONFIG_FILE = "configs/digits_cnn.py"
TARGET_RATIO = 3.0  # the issue: pipeline examples/s >= 3x the train step's

LABELS = {
  "pipeline": "(a) input pipeline: gather + augment, alone",
  "gather": "(a0) gather only, no augmentation (dispatch floor)",
  "indices": "(p) per-epoch permutation (`epoch_indices`)",
  "pipeline_with_order": "(a+p) pipeline incl. permutation (derived)",
  "step": "(b) CNN train step, no augmentation",
  "step_aug": "(c) CNN train step with augmentation inside",
  "load": "(d) host: tfds -> device memory, both splits (once per run)",
}


def stats(values: list[float]) -> dict:
  return {"median": statistics.median(values), "min": min(values), "max": max(values), "values": values}


def summarize(runs: dict[str, list[dict]]) -> dict:
  out = {
    name: {
      "examples_per_second": stats([r["examples_per_second"] for r in rs]),
      "microseconds_per_call": stats([r["microseconds_per_call"] for r in rs]),
    }
    for name, rs in runs.items()
  }
  combined = [
    1.0 / (1.0 / a["examples_per_second"] + 1.0 / p["examples_per_second"])
    for a, p in zip(runs["pipeline"], runs["indices"])
  ]
  out["pipeline_with_order"] = {"examples_per_second": stats(combined)}

  def ratio(num: str, den: str, num_values=None) -> dict:
    nv = num_values or [r["examples_per_second"] for r in runs[num]]
    dv = [r["examples_per_second"] for r in runs[den]]
    return {
      "of_medians": statistics.median(nv) / statistics.median(dv),
      "per_repetition": [n / d for n, d in zip(nv, dv)],
    }

  out["ratio_pipeline_to_step"] = ratio("pipeline", "step")
  out["ratio_pipeline_with_order_to_step"] = ratio("pipeline_with_order", "step", combined)
  out["ratio_pipeline_to_step_aug"] = ratio("pipeline", "step_aug")
  out["ratio_step_aug_to_step"] = ratio("step_aug", "step")
  # Augmentation's share of a real step's time: (t_c - t_b) / t_c, per repetition and of medians.
  tb = [r["microseconds_per_call"] for r in runs["step"]]
  tc = [r["microseconds_per_call"] for r in runs["step_aug"]]
  out["augment_share_of_step"] = {
    "of_medians": 1.0 - statistics.median(tb) / statistics.median(tc),
    "per_repetition": [1.0 - b / c for b, c in zip(tb, tc)],
  }
  out["target_ratio"] = TARGET_RATIO
  out["target_met"] = out["ratio_pipeline_to_step"]["of_medians"] >= TARGET_RATIO
  return out


def markdown(s: dict, meta: dict) -> str:
  b = meta["batch_size"]
  lines = [
    f"## Input pipeline vs digits CNN train step ({CONFIG_FILE}, batch {b})",
    "",
    f"{meta['device']}, jax {jax.__version__}; {meta['timestamp']}; {meta['repeats']} interleaved repetitions; "
    f"script runtime {meta['runtime_seconds']:.0f} s.",
    f"Augment ops ({len(meta['augment'])}): `{', '.join(meta['augment'])}`.",
    f"Train step dispatch: {meta['steps_per_dispatch']} step(s) per dispatch (`dispatch.dispatch_plan`).",
    "",
    "| measurement | examples/s, median | min-max | per call, median | calls per repetition | compile s |",
    "|---|---:|---:|---:|---:|---:|",
  ]
  per_call_unit = {"indices": "epoch", "load": "run"}
  for name in ("pipeline", "gather", "indices", "pipeline_with_order", "step", "step_aug", "load"):
    r = s[name]["examples_per_second"]
    if "microseconds_per_call" in s[name]:
      us = s[name]["microseconds_per_call"]["median"]
      per_call = f"{us / 1000:.1f} ms / {per_call_unit[name]}" if name in per_call_unit else f"{us:,.0f} us / batch"
    else:
      per_call = ""
    compile_s = meta["compile_seconds"].get(name)
    lines.append(
      f"| {LABELS[name]} | {r['median']:,.0f} | {r['min']:,.0f}-{r['max']:,.0f} | {per_call} | "
      f"{meta['calls'].get(name, '')} | {'' if compile_s is None else f'{compile_s:.2f}'} |"
    )

  def fmt(ratio):
    low, high = min(ratio["per_repetition"]), max(ratio["per_repetition"])
    return f"**{ratio['of_medians']:.2f}x** (ratio of medians; per repetition {low:.2f}-{high:.2f})"

  verdict = "met" if s["target_met"] else "NOT met"
  share = s["augment_share_of_step"]
  lines += [
    "",
    f"- (a)/(b), pipeline / train step: {fmt(s['ratio_pipeline_to_step'])}; "
    f"target >= {TARGET_RATIO:.0f}x: **{verdict}**.",
    f"- (a+p)/(b), with the epoch's permutation counted: {fmt(s['ratio_pipeline_with_order_to_step'])}.",
    f"- (a)/(c), pipeline / the augmented step it feeds: {fmt(s['ratio_pipeline_to_step_aug'])}.",
    f"- (c)/(b), the augmented step's rate relative to the plain one: {fmt(s['ratio_step_aug_to_step'])}; "
    f"augmentation's share of the augmented step's time: **{100 * share['of_medians']:.0f}%** "
    f"(per repetition {100 * min(share['per_repetition']):.0f}-{100 * max(share['per_repetition']):.0f}%).",
    "- (d) first-ever load in this process (tfds first use, warm-up, not in the row): "
    f"{meta['first_load_seconds']:.2f} s.",
  ]
  if meta.get("per_op"):
    per_op = meta["per_op"]
    lines += [
      "",
      f"Where (a)'s time goes: each op alone as `augment_batch` on one gathered batch of {b} "
      f"({per_op['calls']} calls per measurement, {meta['repeats']} repetitions; us per batch):",
      "",
      "| op | us / batch, median | min-max | compile s |",
      "|---|---:|---:|---:|",
    ]
    for spec in per_op["names"]:
      r = per_op["summary"][spec]
      lines.append(
        f"| `{spec}` | {r['median']:,.0f} | {r['min']:,.0f}-{r['max']:,.0f} | {per_op['compile_seconds'][spec]:.2f} |"
      )
    total = sum(per_op["summary"][spec]["median"] for spec in per_op["names"] if spec != "chain")
    lines.append(f"| sum of the ops' medians | {total:,.0f} | | |")
  return "\n".join(lines)
