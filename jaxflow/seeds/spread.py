"""The spread of a sweep beyond its mean: std of the final accuracy and loss, disagreement, correlation, ensemble.

Per sweep (each source of a `--study=sources`, or the one `--vary` sweep): the std over seeds of the final
eval accuracy and of the final eval loss, the mean pairwise disagreement of the seeds' eval predictions, the
mean pairwise correlation of their per-example correctness, each with a 95% bootstrap-over-seeds interval
(jaxflow.seeds.agreement says why over seeds), and the ensemble's accuracy beside the mean single seed's.
Beside them, the published figures this kind of study is read against, labelled as theirs.
"""

from __future__ import annotations

import os

import jax

from jaxflow.seeds import agreement, disputed

# Issue 22's figures, as quoted there (not re-read from the papers here): Summers & Dinneen (2021),
# "Nondeterminism and Instability in Neural Network Optimization", as replicated by ReScience C (2021).
PUBLISHED = {
  "who": "Summers & Dinneen 2021, as replicated by ReScience C 2021 (theirs, not measured here)",
  "model": "ResNet-14",
  "dataset": "CIFAR-10",
  "std_accuracy_percent": {"init": 0.22, "data": 0.25, "augment": 0.22, "hardware": 0.21, "all": 0.26, "one_bit": 0.21},
  "their_name": {
    "init": "random init",
    "data": "data shuffling",
    "augment": "data augmentation",
    "hardware": "cuDNN",
    "all": "all sources",
    "one_bit": "one bit of one weight",
  },
  "pairwise_disagreement_percent": 10.7,  # ~, for every source alike
  "correctness_correlation": 0.87,  # ~, pairwise
}
TABLE_ORDER = ("init", "data", "augment", "dropout", "noise", "sampler", "hardware", "one_bit", "all", "none")


def hardware(backend: str, sweeps: list[dict]) -> dict:
  """The `hardware` source (GPU deterministic ops off vs on, all else pinned). On a GPU without
  --xla_gpu_deterministic_ops the `none` sweep is exactly that: nothing varies but the hardware's order of
  operations. Elsewhere it does not apply."""
  if backend != "gpu":
    return {
      "applicable": False,
      "why": f"needs a GPU; no GPU here ({backend} backend, deterministic kernels: the `none` sweep's std is 0)",
    }
  deterministic = "--xla_gpu_deterministic_ops=true" in os.environ.get("XLA_FLAGS", "")
  none = next((s for s in sweeps if s["name"] == "none"), None)
  if deterministic or none is None:
    why = "deterministic ops are on (XLA_FLAGS)" if deterministic else "no `none` sweep (use --study=sources)"
    return {"applicable": False, "why": why}
  return {
    "applicable": True,
    "sweep": "none",
    "why": "GPU without deterministic ops: the `none` sweep varies nothing else",
  }


def _finals(summaries: list[dict], name: str) -> list[float | None]:
  return [s["final"]["eval"].get(name) if s.get("status") == "completed" else None for s in summaries]


def sweep_spread(summaries: list[dict], predicted) -> tuple[dict, dict | None]:
  """(the sweep's spread for report.json, the per-example arrays to save or None). `predicted`: the
  sweep's SweepPredictions, or the reason there are none."""
  out = {
    "accuracy_std": agreement.std_with_ci(_finals(summaries, "accuracy")),
    "loss_std": agreement.std_with_ci(_finals(summaries, "loss")),
    "ci_method": agreement.CI_METHOD,
  }
  if isinstance(predicted, str):
    return {**out, "agreement": None, "why_no_agreement": predicted}, None
  numbers = agreement.summarize(predicted.probabilities, predicted.labels)
  arrays = numbers.pop("arrays")
  recorded = [summaries[i]["final"]["eval"].get("accuracy") for i in predicted.seed_indices]
  singles = numbers["ensemble"]["single_accuracies"]
  out["agreement"] = numbers
  out["predictions_check"] = {
    "params_verified": all(predicted.verified),  # loaded params hash to each summary's params_sha256
    "accuracy_matches_summary": all(r is None or abs(r - a) < 1e-6 for r, a in zip(recorded, singles)),
  }
  if any(site is not None for site in predicted.one_bit_sites):
    out["one_bit_sites"] = predicted.one_bit_sites
  return out, arrays


def _ci(d: dict | None, scale: float = 1.0, digits: int = 2, kind: str = "f") -> str:
  """`value [lo, hi]`; kind "g" (significant digits) for a loss, whose std may be 1e-5 (one_bit)."""
  if not d or d.get("std", d.get("mean")) is None:
    return "-"
  value = d.get("std", d.get("mean")) * scale
  ci = d.get("ci95")
  return f"{value:.{digits}{kind}}" + (
    f" [{ci[0] * scale:.{digits}{kind}}, {ci[1] * scale:.{digits}{kind}}]" if ci else ""
  )


def markdown(report: dict) -> list[str]:
  """The report's sections: spread by sweep, the ensemble, the published figures side by side."""
  sweeps = [s for s in report["sweeps"] if s.get("spread")]
  if not sweeps:
    return []
  lines = [
    "",
    "## Spread, agreement and the ensemble (eval split, final parameters)",
    "",
    "| sweep | seeds | std accuracy (points) | std loss | pairwise disagreement (%) | correctness correlation "
    "| ensemble accuracy | mean single-seed accuracy |",
    "|---|---:|---|---|---|---|---:|---:|",
  ]
  for s in sweeps:
    sp, ag = s["spread"], s["spread"].get("agreement") or {}
    ens = ag.get("ensemble") or {}
    lines.append(
      f"| {s['name']} | {sp['accuracy_std']['n']} | {_ci(sp['accuracy_std'], 100)} | "
      f"{_ci(sp['loss_std'], 1, 2, 'g')} | "
      f"{_ci(ag.get('disagreement'), 100)} | {_ci(ag.get('correctness_correlation'), 1, 3)} | "
      f"{ens.get('accuracy', float('nan')):.4f} | {ens.get('mean_single_accuracy', float('nan')):.4f} |"
    )
  lines += ["", f"Intervals: {agreement.CI_METHOD}"]
  for s in sweeps:
    if s["spread"].get("why_no_agreement"):
      lines.append(f"- `{s['name']}`: no example-wise view: {s['spread']['why_no_agreement']}.")
    if s["spread"].get("files"):
      files = ", ".join(f"`{p}`" for p in s["spread"]["files"].values())
      lines.append(f"- `{s['name']}`: the examples the seeds disagree on most: {files}.")
  return lines + published_markdown(report, sweeps)


def published_markdown(report: dict, sweeps: list[dict]) -> list[str]:
  p, hw = PUBLISHED, report.get("hardware") or {}
  ours = {s["name"]: s for s in sweeps}
  lines = [
    "",
    f"### Beside the published figures ({p['who']}; {p['model']} on {p['dataset']})",
    "",
    f"| source | ours: std accuracy (points) | theirs: SD test accuracy (%), {p['model']} / {p['dataset']} "
    "| ours: disagreement (%) | theirs: disagreement (%) |",
    "|---|---|---:|---|---:|",
  ]
  for name in TABLE_ORDER:
    theirs = p["std_accuracy_percent"].get(name)
    if name == "hardware" and not hw.get("applicable"):
      mine, dis = f"not applicable: {hw.get('why', 'no GPU')}", "-"
    else:
      s = ours.get(hw.get("sweep") if name == "hardware" else name)
      if s is None and theirs is None:
        continue
      mine = _ci(s["spread"]["accuracy_std"], 100) if s else "not run in this study"
      dis = _ci((s["spread"].get("agreement") or {}).get("disagreement"), 100) if s else "-"
    label = f"{name} (theirs: {p['their_name'][name]})" if name in p["their_name"] else name
    theirs_dis = f"~{p['pairwise_disagreement_percent']}" if name == "all" else "-"
    lines.append(f"| {label} | {mine} | {theirs if theirs is not None else '-'} | {dis} | {theirs_dis} |")
  lines += [
    "",
    f"Theirs: a {p['model']} trained on {p['dataset']} (10,000 test images), figures as quoted in issue 22: about "
    f"{p['pairwise_disagreement_percent']}% pairwise disagreement of test predictions and a correctness "
    f"correlation of about {p['correctness_correlation']}. Ours: this config's model and eval split; the scales "
    "differ with the model, the data and the eval split's size, so compare the pattern across sources, not the "
    "values.",
  ]
  return lines


def add_to_report(report: dict, results, predicted: list, workdir: str, *, plots: bool) -> None:
  """Each sweep's `spread` (and its disputed-examples files), `hardware` and `published` into `report`."""
  for sweep, result, p in zip(report["sweeps"], results, predicted, strict=True):
    sweep["spread"], arrays = sweep_spread(result.summaries, p)
    if arrays is not None:
      sweep["spread"]["files"] = disputed.write(workdir, sweep["name"], p, arrays, plots=plots)
  report["hardware"] = hardware(jax.default_backend(), report["sweeps"])
  report["published"] = PUBLISHED
