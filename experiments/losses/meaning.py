"""The study's words: the one-line answer, the setup, what it means and the caveats, written from the numbers so
that a rerun that measures something else says something else.

What each loss optimizes (the textbook facts the paragraphs test): L2 (MSE) is minimized by the conditional mean,
so a few far-off targets pull every prediction toward them; L1 (MAE) by the conditional median, which a minority of
outliers cannot move. Cross-entropy and BCE are the negative log-likelihood of the labels (a proper scoring rule
with a gradient that stays large on confidently wrong examples); MSE on probabilities (the Brier score) is proper
too but its gradient fades as a softmax saturates; L1 on probabilities is not proper (it rewards pushing a
probability to 0 or 1) and its gradient w.r.t. a probability is constant in size.
"""

from __future__ import annotations

from experiments.common import report

L2_COST, L1_COST = "L2: what outliers cost (test MAE)", "L1: what outliers cost (test MAE)"


def _mean(summaries: dict, arm: str, metric: str) -> float | None:
  return summaries.get(arm, {}).get(metric, {}).get("mean")


def _diff(diffs: list[dict], comparison: str, a: str) -> dict | None:
  return next((d for d in diffs if d["comparison"] == comparison and d["a"] == a), None)


def _said(d: dict | None, digits: int = 3) -> str:
  if d is None:
    return "not run"
  ci = d["ci95"]
  shown = f"{report.fmt(d['mean'], digits)} [{report.fmt(ci[0], digits)}, {report.fmt(ci[1], digits)}]" if ci else "-"
  return f"{shown}, {d['verdict']}"


def answer(summaries: dict, diffs: list[dict]) -> str:
  f = report.fmt
  parts = []
  clean = _diff(diffs, "clean: test MAE", "L1 (mae), clean")
  dirty = _diff(diffs, "outliers: test MAE", "L1 (mae), 10% outliers")
  if dirty:
    parts.append(
      "Regression test MAE, L2 vs L1: "
      + (
        f"clean {f(_mean(summaries, 'L2 (mse), clean', 'test_mae'))} vs "
        f"{f(_mean(summaries, 'L1 (mae), clean', 'test_mae'))} ({clean['verdict']}), "
        if clean
        else ""
      )
      + f"with 10% outliers {f(_mean(summaries, 'L2 (mse), 10% outliers', 'test_mae'))} vs "
      f"{f(_mean(summaries, 'L1 (mae), 10% outliers', 'test_mae'))} ({dirty['verdict']})"
    )

  def accuracies(prefix: str) -> list[str]:
    names = [n for n in summaries if n.startswith(prefix) and _mean(summaries, n, "accuracy") is not None]
    return [f"{n[len(prefix) :]} {f(_mean(summaries, n, 'accuracy'))}" for n in names]

  ten, two = accuracies("10 classes: "), accuracies("odd/even: ")
  if ten:
    parts.append("10-class accuracy " + ", ".join(ten))
  if two:
    parts.append("odd/even accuracy " + ", ".join(two))
  return "; ".join(parts) + "."


def setup(conditions, counts: dict, args, epochs: int, quick: tuple[str, ...]) -> list[str]:
  dirty = counts.get(0.1) or next(iter(counts.values()), {})
  lines = [
    f"Model: configs/digits_mlp.py (MLP 64-256-256-head, dropout 0.1, Adam 3e-3 cosine, batch 128), {epochs} epochs, "
    "the same for every arm; only the loss (and the problem card it needs) changes.",
    f"Every arm: `jaxflow.seeds(config, workdir, seeds={args.seeds}, vary='all', mode='vmap')`; seed i of every arm "
    "pins the same streams, so arms are compared seed by seed.",
    "Regression data (experiments/losses/data.py): the digits' images with the digit's value as an integer target "
    "(jaxflow's digits split, 1437 / 360), as an NPZ; `problem.kind=regression`, monitor `eval/mae`. Outliers: "
    f"{dirty.get('outliers', '-')} of {dirty.get('train_rows', '-')} training targets (10%) replaced by values drawn "
    "from 30..99, fixed rows and values; the test targets are never changed.",
    "Regression metrics: each seed's model exported (`jaxflow.export`, latest checkpoint) and loaded "
    "(`jaxflow.load_model`) on the 360 test images: MAE, RMSE, mean signed error, and how often the rounded value "
    "is the digit; the MAE equals the run's own eval MAE (checked).",
    "Classification: the shipped digits as 10 classes (losses `cross_entropy`, `mse`, `mae`: MSE and L1 compare "
    "the softmax with the one-hot target, averaged over classes) and as odd/even (`problem.kind=binary`, "
    "`problem.positive_labels=(1, 3, 5, 7, 9)`: `bce`, and `mse` / `mae` on the sigmoid; 2-class softmax "
    "cross-entropy through `data.adapt.relabel` to parity with `problem.kind=multiclass`).",
    "Arms: " + "; ".join(f"{c.name} ({' '.join(f'`{o}`' for o in c.overrides)})" for c in conditions) + ".",
  ]
  if args.quick:
    lines.append(
      f"Quick: three arms, mode='sequential', with {' '.join(f'`{o}`' for o in quick)} "
      "(a few steps; numbers mean nothing)."
    )
  return lines


def paragraphs(summaries: dict, diffs: list[dict], counts: dict) -> list[str]:
  f = report.fmt
  out = []
  dirty = counts.get(0.1, {})
  if "L2 (mse), 10% outliers" in summaries:
    out.append(
      "**L1 vs L2 (regression).** Clean data, L1 - L2 on test MAE: "
      f"{_said(_diff(diffs, 'clean: test MAE', 'L1 (mae), clean'))}; on test RMSE: "
      f"{_said(_diff(diffs, 'clean: test RMSE', 'L1 (mae), clean'))}. With 10% outliers: MAE "
      f"{_said(_diff(diffs, 'outliers: test MAE', 'L1 (mae), 10% outliers'))}, RMSE "
      f"{_said(_diff(diffs, 'outliers: test RMSE', 'L1 (mae), 10% outliers'))}. What the outliers cost each loss "
      f"(test MAE, outliers - clean): L2 {_said(_diff(diffs, L2_COST, 'L2 (mse), 10% outliers'))}, "
      f"L1 {_said(_diff(diffs, L1_COST, 'L1 (mae), 10% outliers'))}. "
      f"The mean signed error tells why: L2 trained on outliers predicts "
      f"{f(_mean(summaries, 'L2 (mse), 10% outliers', 'mean_error'), 2)} on average above the truth (its training "
      f"targets' mean is {f(dirty.get('train_target_mean'), 2)}, "
      f"their median {f(dirty.get('train_target_median'), 1)}), "
      f"L1 {f(_mean(summaries, 'L1 (mae), 10% outliers', 'mean_error'), 2)}: L2 estimates a mean, which the outliers "
      "move; L1 a median, which they do not."
    )
  if "10 classes: MSE" in summaries:
    out.append(
      "**Cross-entropy vs MSE vs L1 (10 classes).** Against cross-entropy, test accuracy: MSE "
      f"{_said(_diff(diffs, '10 classes: accuracy', '10 classes: MSE'))}; L1 "
      f"{_said(_diff(diffs, '10 classes: accuracy', '10 classes: L1'))}. MSE on the softmax (the Brier score) is a "
      "proper score like cross-entropy, but its gradient shrinks as the softmax saturates, so it learns the last "
      "examples more slowly; L1 on probabilities has a gradient of constant size per class and rewards pushing "
      "probabilities to 0 or 1, and with ten classes its signal per wrong class is a tenth of the mean."
    )
  stuck = _stuck(summaries, "10 classes: L1", "10 classes: cross-entropy")
  if stuck:
    out.append(stuck)
  if "odd/even: BCE" in summaries:
    out.append(
      "**BCE vs cross-entropy vs MSE (odd/even).** Against BCE on one logit, test accuracy: 2-class softmax "
      f"cross-entropy {_said(_diff(diffs, 'odd/even: accuracy', 'odd/even: 2-class cross-entropy'))} (the same "
      "likelihood written with two logits: only the parametrization differs); MSE on the sigmoid "
      f"{_said(_diff(diffs, 'odd/even: accuracy', 'odd/even: MSE'))}; L1 "
      f"{_said(_diff(diffs, 'odd/even: accuracy', 'odd/even: L1'))}."
    )
  clean = _diff(diffs, "clean: test RMSE", "L1 (mae), clean")
  if clean and clean["verdict"].startswith("L1"):
    out.append(
      "**Where the measurement disagrees with the textbook.** On clean targets L1 beats L2 even on test RMSE, the "
      f"metric L2 minimizes (L1 - L2: {_said(clean)}). The targets here are exact integers without noise, so the "
      "conditional mean and median coincide and the textbook argument (L2 is optimal for Gaussian noise) does not "
      "apply; what remains is optimization: L2's gradient shrinks with the error, L1's keeps its size, so within "
      "the same 30 epochs L1 pulls predictions closer to the exact values (a plausible reading, not tested here)."
    )
  out.append(
    "Where each wins: L1 where targets carry gross errors and the median is the right answer; L2 where the noise "
    "is mild and symmetric and large errors should cost more (it is what RMSE rewards); cross-entropy/BCE for "
    "classification (the likelihood of the labels, with calibrated probabilities as a by-product); MSE on "
    "probabilities is a defensible alternative when the table above shows it ties, L1 on probabilities is not. "
    "Where a row above reads 'tie', the seeds do not separate the losses on this easy task, whatever the theory."
  )
  return out


def _stuck(summaries: dict, arm: str, reference: str) -> str | None:
  """A sentence on the seeds of `arm` that end far (> 0.05) below every seed of `reference`, if any."""
  values = summaries.get(arm, {}).get("accuracy", {}).get("values", [])
  floor = min(summaries.get(reference, {}).get("accuracy", {}).get("values", []) or [0.0])
  low = [v for v in values if v < floor - 0.05]
  if not low:
    return None
  return (
    f"**{arm}: {len(low)} of {len(values)} seeds stall** at {', '.join(report.fmt(v) for v in low)} (every "
    f"{reference} seed reaches {report.fmt(floor)} or more); a drop near 36 of 360 test images is one digit's "
    "worth, consistent with a class the model stopped predicting, whose gradient under L1 on probabilities is too "
    "small to revive it: a local minimum of the loss, not of the task (per-class recall not checked here)."
  )


def caveats(args) -> list[str]:
  return [
    f"{args.seeds} seeds; one small dataset (8x8 digits), one model, one optimizer setting (Adam 3e-3 cosine) for "
    "every loss: a loss's best learning rate differs (L1's and MSE's gradients are smaller than cross-entropy's), "
    "and none was tuned per loss, which favours the loss the config was tuned for (cross-entropy).",
    "The outliers are gross (30..99 for true values 0..9) and confined to training; milder or symmetric outliers "
    "would cost L2 less. Targets are integers because jaxflow's NPZ reader refuses float labels (a real-valued "
    "regression target in an NPZ is not offered by the public API).",
    "jaxflow offers no Huber or quantile loss (`config.loss` takes cross_entropy, bce, focal, mse, mae), so the "
    "usual middle ground between L1 and L2 is not measured; softmax cross-entropy on an odd/even task needs the "
    "relabel route (problem.kind=binary takes bce, focal, mse, mae on one logit).",
    "Calibration is not measured (jaxflow reports per-group ECE only with `data.group_feature`); the eval loss is "
    "each arm's own loss and is not comparable across arms.",
    "Disagreement with the usual claim 'MSE is wrong for classification': on this easy task it can tie with "
    "cross-entropy (see the paired table); the claim holds where the table says so.",
  ]
