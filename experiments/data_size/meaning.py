"""The words of the report, written from the numbers (a rerun with other numbers says what those show).

The claims the workflow's question usually meets, tested here: "more data always helps" (does the curve
flatten within the data at hand?), "a network needs about ten examples per parameter" (the rule of ten), and
"a convolutional network needs less data than an MLP on images" (its prior should matter most when n is small).
"""

from __future__ import annotations

from experiments.data_size.fit import describe_size

RULE_OF_TEN = 10


def _share(s: dict, i: int) -> float | None:
  full, mean = s["full_accuracy"], s["accuracy"][i]["mean"]
  return None if full in (None, 0) or mean is None else mean / full


def _model_line(name: str, s: dict) -> str:
  n95 = describe_size(s["n95_measured"])
  return f"{name} reaches 95% of its n={s['sizes'][-1]} accuracy ({s['full_accuracy']:.3f}) with n={n95}"


def _flattens(s: dict) -> str:
  """Where the fitted curve flattens, or why there is no such point to quote."""
  f = s["fit"]
  if not f.get("fitted"):
    return "not fitted"
  if not f.get("informative"):
    return "flat within the seeds' CI"
  return "n~" + describe_size(f["flattens_at"], s["sizes"][0])


def answer(summaries: dict, paired: list[dict]) -> str:
  mlp, cnn, gcn = (summaries[k] for k in ("MLP", "CNN", "GCN (karate)"))
  share = _share(gcn, 0)
  return (
    f"The {_model_line('MLP', mlp)}, the {_model_line('CNN', cnn)}; the fitted error curves flatten (doubling "
    f"gains < 1 test image) at {_flattens(mlp)} (MLP) and {_flattens(cnn)} (CNN); the karate GCN with "
    f"{gcn['sizes'][0]} labelled nodes already has "
    + (f"{share:.0%} of its {gcn['sizes'][-1]}-label accuracy." if share is not None else "no accuracy.")
  )


def _train_gap(s: dict) -> str:
  """The training accuracy (as logged during the last epoch's steps, dropout on) against the test accuracy."""
  train = [t["mean"] for t in s["train_accuracy"] if t["mean"] is not None]
  if not train:
    return ""
  return (
    f"Training accuracy (logged during the last epoch, dropout on) is {min(train):.3f}-{max(train):.3f} across "
    "sizes: "
    + (
      "every set is fitted, so the gap to test accuracy is what more data closes."
      if min(train) > 0.97
      else "the smallest sets are not all fitted within the step budget."
    )
  )


def _verdicts(paired: list[dict]) -> str:
  groups: dict[str, list[str]] = {}
  for d in paired:
    groups.setdefault(d["verdict"], []).append(d["comparison"].removeprefix("n="))
  return "; ".join(f"{verdict} at n = {', '.join(sizes)}" for verdict, sizes in groups.items())


def _curve(name: str, s: dict) -> str:
  f = s["fit"]
  if f.get("informative"):
    law = (
      f"Its error follows {f['a']:.3g} n^-{f['b']:.2f} + {f['c']:.4f} (rms residual {f['rms_residual']:.4f}): "
      f"doubling the data is predicted to gain less than one test image beyond {_flattens(s)}"
      + (" (beyond the data measured: an extrapolation)." if (f["flattens_at"] or 0) > s["sizes"][-1] else ".")
    )
  else:
    law = f"No power law is quoted ({f.get('why') or 'the curve is flat within the seeds CI'})."
  tied = (
    f"from n={s['smallest_tied_with_full']} on every size ties with the largest (the paired difference is below one "
    "test image or its CI contains 0)"
    if s["smallest_tied_with_full"]
    else "no smaller size ties with the largest"
  )
  fitted = f" (n~{describe_size(s['n95_fitted'], s['sizes'][0])} by the fit)" if f.get("informative") else ""
  return (
    f"**{name}.** Test accuracy goes from {s['accuracy'][0]['mean']:.3f} with {s['sizes'][0]} examples to "
    f"{s['full_accuracy']:.3f} with {s['sizes'][-1]}; 95% of that is reached at n={describe_size(s['n95_measured'])} "
    f"measured{fitted}, and {tied}. {law} {_train_gap(s)}"
  )


def _cnn_versus_mlp(paired: list[dict]) -> str:
  small = [d for d in paired if int(d["comparison"].removeprefix("n=")) <= 100]
  wins_small = [d for d in small if d["verdict"] == "CNN better"]
  wins_large = [d["comparison"] for d in paired if d not in small and d["verdict"] == "CNN better"]
  if small and not wins_small:
    claim = (
      "This disagrees with the claim that the CNN's prior matters most when data is scarce: at the smallest sizes "
      "the two tie (the seeds' spread there is larger than any gain)"
      + (f"; the CNN's edge shows where the CIs narrow ({', '.join(wins_large)})." if wins_large else ".")
    )
  elif len(wins_small) == len(small):
    claim = "The CNN's prior pays off at every small size, as the claim has it."
  else:
    claim = (
      "Only partly as the claim has it: the CNN wins at "
      + ", ".join(d["comparison"] for d in wins_small)
      + " and ties at the other small sizes, where the seeds' spread is wide."
    )
  return f"**CNN against MLP on the same subsets.** {_verdicts(paired)}. {claim}"


def paragraphs(summaries: dict, paired: list[dict]) -> list[str]:
  out = [_curve(name, summaries[name]) for name in ("MLP", "CNN")]
  out.append(_cnn_versus_mlp(paired))
  gcn = summaries["GCN (karate)"]
  flat = not gcn["fit"].get("informative") and gcn["smallest_tied_with_full"] == gcn["sizes"][0]
  out.append(
    f"**Karate club.** With {gcn['sizes'][0]} labelled nodes (the two leaders) the GCN labels "
    f"{gcn['accuracy'][0]['mean']:.3f} of the others correctly; with {gcn['sizes'][-1]}, {gcn['full_accuracy']:.3f}"
    + (", and every size ties with the largest: more labels buy nothing the seeds can resolve. " if flat else ". ")
    + "The graph carries most of the answer (members side with the leader they are tied to), so a few labels go "
    "far; but the eval nodes are the unlabelled ones, so each size is scored on a different, smaller set (see Caveats)."
  )
  out.append(_rule_of_ten(summaries))
  return out


def _rule_of_ten(summaries: dict) -> str:
  parts = []
  for name in ("MLP", "CNN"):
    s = summaries[name]
    params = s.get("num_params")
    if params and s["n95_measured"]:
      parts.append(
        f"the {name} has {params:,} parameters (the rule asks {RULE_OF_TEN * params:,} examples) and reaches 95% of "
        f"its full-data accuracy with {s['n95_measured']:,}"
      )
  if not parts:
    return "**The rule of ten.** Not assessed in this run."
  return (
    "**The rule of ten disagrees with the measurement.** The rule of thumb 'about ten examples per parameter' "
    f"would rule both models out: {'; '.join(parts)}. Parameters are not the currency of sample size for these "
    "models; the task's difficulty and the architecture's fit to it are."
  )


def setup(models, args, quick_steps: int, quick_batch: int) -> list[str]:
  lines = []
  for m in models:
    sizes = m.quick_sizes if args.quick else m.sizes
    budget = quick_steps if args.quick else m.steps
    batch = quick_batch if args.quick else f"min({m.batch}, n // 2)"
    lines.append(
      f"{m.name}: `{m.config}`, {m.unit} n = {', '.join(map(str, sizes))}; {budget} optimizer steps at every size "
      + ("(one full-graph step per epoch)." if m.graph else f"(batch {batch}, epochs = ceil(steps / (n // batch))).")
    )
  lines += [
    "Digits subsets: `data.class_counts=(n/10, ...)`: n/10 examples of every class, drawn from the `data` stream, so "
    "each seed trains on another subset and seed i of the MLP and the CNN on the same one; the largest size is "
    "the whole training split (1437, its natural class mix). The test split (360 images) is the same for all.",
    "Karate: `data.train_examples=n` labels n nodes, half per club: the two leaders, then members drawn from the "
    "`data` stream; the other 34 - n nodes are evaluated.",
    f"Each arm: `jaxflow.seeds(config, workdir, seeds={args.seeds}, vary='all', mode='sequential')`.",
    "Power law: `scipy.optimize.curve_fit` of error(n) = a n^-b + c to the mean error per size.",
  ]
  return lines


def caveats(seeds: int, summaries: dict) -> list[str]:
  points = ", ".join(f"{len(s['sizes'])} {name} sizes" for name, s in summaries.items())
  return [
    "Hyperparameters (learning rate, dropout, schedule) are the configs', tuned for the full data, and every size "
    "trains the same number of steps; a small set tuned for itself (more regularization) might do better.",
    "Digits resolution: one test image is 1/360 = 0.0028. Karate: the eval nodes are the unlabelled ones, so a "
    "larger n is scored on fewer nodes (10 at n=24: resolution 0.1) and on a different set each size and seed.",
    f"The fit weighs each size's mean equally and has few points ({points}; 3 parameters); "
    "'flattens at' beyond the largest measured size is an extrapolation.",
    f"{seeds} seeds per size; the 95% t-interval of {seeds} values is wide, so small differences are ties.",
    "The subsets are class-balanced; the full split is not exactly (139-147 per class), a negligible difference.",
    "A t-interval of an accuracy near 1 can reach above 1 with few seeds: it is the symmetric small-sample "
    "interval of the mean, not a bound on the metric.",
    "With 2 labelled nodes every karate seed labels the same two leaders: its spread comes from the initial "
    "parameters and dropout only.",
  ]
