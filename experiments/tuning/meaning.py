"""The words of the report, written from the numbers (a rerun with other numbers says what those show).

The claim tested: "Bayesian optimization is feasible for about 4 hyperparameters, not 30" -- read as: at an equal
budget, BO beats model-free search (random, Sobol) at a few dimensions and stops doing so by 30.
"""

from __future__ import annotations

from experiments.common import report
from experiments.tuning import functions, mlp


def _rows(fdiff: list[dict], a: str, b: str, name: str) -> list[dict]:
  return [r for r in fdiff if r["a"] == a and r["b"] == b and r["function"] == name]


def _wins(rows: list[dict], a: str) -> list[int]:
  return [r["dim"] for r in rows if r["verdict"] == f"{a} better"]


def _dims(dims: list[int]) -> str:
  return ", ".join(map(str, dims)) or "none"


def beats(fdiff: list[dict], plan: dict, b: str) -> dict[str, dict]:
  """Per function: the dimensions where BO is resolved better than `b`, worse, and tied."""
  out = {}
  for name in plan["functions"]:
    rows = _rows(fdiff, "bo", b, name)
    better, worse = _wins(rows, "bo"), _wins(rows, b)
    out[name] = {"better": better, "worse": worse, "tie": [r["dim"] for r in rows if r["verdict"] == "tie"]}
  return out


def _find(mdiff: list[dict], comparison: str, a: str, b: str) -> dict | None:
  return next((r for r in mdiff if r["comparison"] == comparison and r["a"] == a and r["b"] == b), None)


def answer(fdiff: list[dict], plan: dict, mdiff: list[dict]) -> str:
  vs = beats(fdiff, plan, "random")
  parts = [
    f"{name}: d = {_dims(v['better'])} (ties at {_dims(v['tie'])}; worse at {_dims(v['worse'])})"
    for name, v in vs.items()
  ]
  retrained = report.difference_text(_find(mdiff, "MLP retrained accuracy", "bo pick", "random pick"))
  return (
    f"At equal budgets (min(10 d, {plan['cap']}) evaluations), BO's final regret is resolved below random search's "
    f"at {'; '.join(parts)}; on the digits MLP's 3-parameter space BO's pick retrained scores {retrained} "
    f"against random search's."
  )


def setup(plan: dict, mlp_plan: dict, args) -> list[str]:
  shown = ", ".join(
    f"{n} on [{functions.FUNCTIONS[n].low}, {functions.FUNCTIONS[n].high}]^d" for n in plan["functions"]
  )
  lines = [
    f"Test functions: {shown}; minimum 0 (Ackley's moved per repetition to a point uniform in the inner half of the "
    "box, the same for every method; Rosenbrock's at (1, ..., 1)).",
    f"Dimensions {', '.join(map(str, plan['dims']))}; budget min({plan['per_dim']} d, {plan['cap']}) evaluations for "
    f"every method (the cap: BO's cost per suggestion grows with the evaluations; see Caveats).",
    "Methods, all through `jaxflow.optimize(fn, space, method=..., budget=..., seed=i)`: `random` (uniform), "
    "`sobol` (scrambled Sobol), `bo` (jaxflow's GP: Matern-5/2 ARD, EI, its default Sobol start of "
    "max(5, min(2 d, 10)) points). Repetition i uses study seed i for every method (paired by index).",
    f"{args.seeds} repetitions per (function, dimension, method); simple regret = best value so far - minimum; "
    "median with a percentile-bootstrap CI of the median; paired differences on log10 regret (t-interval).",
    f"Digits MLP: `jaxflow.tune(config, workdir, space={mlp.SPACE_SHOWN!r}, method=..., trials={mlp_plan['trials']}, "
    f"seed=i)` on {mlp.CONFIG} with {report_overrides(mlp.base_overrides(args.quick))}; space: lr log [1e-4, 0.3], "
    f"weight decay log [1e-6, 0.1], dropout [0, 0.6]; BO with init_trials={mlp_plan['init_trials']}; "
    f"{mlp_plan['batch']} trial(s) per round; "
    f"{mlp_plan['studies']} study seed(s) per method; objective: final test accuracy (jaxflow tune's default).",
    "Each method's best trial over its studies retrained through `jaxflow.seeds` (full run only; vmap, all streams "
    "varied; seed i shared by the two arms).",
  ]
  return lines


def report_overrides(overrides) -> str:
  return " ".join(f"`{o}`" for o in overrides)


def paragraphs(summaries: dict, fdiff: list[dict], mdiff: list[dict], plan: dict) -> list[str]:
  vs_random, vs_sobol = beats(fdiff, plan, "random"), beats(fdiff, plan, "sobol")
  out = []
  for name in plan["functions"]:
    r, s = vs_random[name], vs_sobol[name]
    out.append(
      f"{name}: BO's final regret is resolved below random search's at d = {_dims(r['better'])}, tied at "
      f"{_dims(r['tie'])}, above it at {_dims(r['worse'])}; against Sobol: below at {_dims(s['better'])}, tied at "
      f"{_dims(s['tie'])}, above at {_dims(s['worse'])}."
    )
  dims = plan["dims"]
  secs = {d: max(summaries[f"{n} d={d} bo"]["suggest_seconds"] for n in plan["functions"]) for d in dims}
  out.append(
    "BO's price per suggestion (median, this machine, at its load): "
    + ", ".join(f"d={d}: {secs[d]:.2f} s" for d in dims)
    + "; random and Sobol cost microseconds. For a training run of minutes either is negligible; the budget of "
    "evaluations is what limits BO, since its GP must see the space before it can model it."
  )
  best = _find(mdiff, "MLP study's best trial", "bo", "random")
  out.append(
    "Digits MLP (3 parameters, well inside BO's comfortable range): the best trial of a study, BO - random: "
    f"{report.difference_text(best)}; the picks retrained: "
    f"{report.difference_text(_find(mdiff, 'MLP retrained accuracy', 'bo pick', 'random pick'))}. The accuracy "
    "surface is flat near its top (many settings reach 0.96-0.98), so a few trials of either method land near it."
  )
  out.append(_claim(vs_random, plan))
  return out


def _claim(vs_random: dict, plan: dict) -> str:
  """Whether the measurement agrees with 'about 4, not 30'."""
  top = max(plan["dims"])
  at_top = [n for n, v in vs_random.items() if top in v["better"]]
  low = [n for n, v in vs_random.items() if any(d <= 4 for d in v["better"])]
  verdict = (
    f"BO still beats random search at d={top} on {', '.join(at_top)}: the measurement does not support a hard "
    "limit near 4 on that function. "
    if at_top
    else f"BO no longer beats random search at d={top} on any function: the '30' half of the claim holds here. "
  )
  verdict += (
    f"At d <= 4 BO beats random on {', '.join(low)}." if low else "At d <= 4 BO does not beat random on any function."
  )
  return (
    "Against the claim ('about 4 hyperparameters, not 30'): " + verdict + " The limit is a budget, not a dimension: "
    f"with min(10 d, {plan['cap']}) evaluations the GP sees fewer than one point per dimension at d=30, and what BO "
    "gains there depends on how much of the function a smooth model learns from so few points."
  )


def caveats(args, plan: dict) -> list[str]:
  out = [
    f"The budget is capped at {plan['cap']} evaluations: from d = 4 on every method gets the same {plan['cap']}, "
    "below one evaluation per dimension at d = 30 (10 d would be 300), and BO spends 8-10 of them on its Sobol "
    "start. The cap keeps the full run near 10 minutes on 2 cores shared by several users (BO at d = 30 with 48 "
    "evaluations took 4-6 min per repetition at load ~10 here: GP compiles per padded size, then seconds per "
    "suggestion) and matches a training-run budget; with 10 d evaluations BO may pull ahead at d = 16-30 (not "
    "measured).",
    "Ackley with 20 evaluations at d >= 4: every method stays on the function's outer plateau (median regret "
    "18-21; about 22 is the most it can be), so the ties there say the budget is too small for any method to find "
    "the funnel, not that BO and random search are equally good at those dimensions.",
    "Two test functions, one BO configuration (jaxflow's defaults: EI, Matern-5/2 ARD GP with a log-normal "
    "lengthscale prior, Sobol start). High-dimensional BO methods (trust regions as in TuRBO, additive or "
    "embedding models as in REMBO/SAASBO) were not tried; they move the limit the claim names.",
    "Repetition i of BO and of random search share only the study seed and Ackley's shifted minimum: the draws "
    "differ, so the pairing removes the function's difficulty at that shift, not the methods' own luck.",
    "The bootstrap interval of a median of 5 values can only span the sample's values; the t-interval of mean log10 "
    "regret next to it is the second view.",
    "Digits MLP: 2 study seeds of 8 trials per method (BO: 3 Sobol, then 5 from the GP; a real training each: "
    "the study's most expensive part), "
    "selected on the test split (the only evaluation split jaxflow's digits has); the retrained picks are "
    "measured on the same split, so their accuracy is still optimistic by the selection.",
  ]
  if args.quick:
    out.insert(0, "Quick run: a few evaluations, one function and two dimensions; not a result.")
  return out
