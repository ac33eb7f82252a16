"""The words of the report, written from the numbers (a rerun with other numbers says what those show).

The claims tested: spending a labelling budget on a second label per image (and dropping the images whose two
labels disagree) beats spending it on more images with one label each, or the reverse; the audit's conflict
finder finds label noise; and the old study's findings on the cost of noise (symmetric noise cheap up to 20%,
dear at 40%; pairflip dearer than symmetric at the same rate; the best epoch recovers much of it, optimistically).
"""

from __future__ import annotations


def _m(findings: dict, key: str, name: str) -> float | None:
  s = findings[key].get(name)
  return None if s is None else s["mean"]


def _f(v: float | None, digits: int = 3) -> str:
  return "-" if v is None else f"{v:.{digits}f}"


def _diff(question: list[dict], a: str, b: str) -> dict | None:
  return next((d for d in question if d["a"] == a and d["b"] == b), None)


def _said(d: dict | None) -> str:
  if d is None or d["mean"] is None:
    return "not measured"
  ci = f" [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]" if d["ci95"] else ""
  return f"{d['mean']:+.3f}{ci}, " + ("a tie" if d["verdict"] == "tie" else "resolved")


def _tie(d: dict | None) -> bool:
  return d is not None and d["verdict"] == "tie"


def _kept(findings: dict) -> tuple[float, float]:
  per_seed = findings["cleaning"]["per_seed"]
  images = sum(c["kept_images"] for c in per_seed) / len(per_seed)
  rate = sum(c["kept_noise_rate"] for c in per_seed) / len(per_seed)
  return images, rate


def answer(findings: dict, question: list[dict], *, names: dict) -> str:
  more, cleaned = names["more"], names["cleaned"]
  d = _diff(question, cleaned, more)
  images, rate = _kept(findings)
  n = findings["cleaning"]["images_per_half"]
  verdict = d["verdict"] if d else "not measured"
  lead = {f"{cleaned} better": "Clean the data", f"{more} better": "Use more data"}.get(
    verdict, "Neither, within the seeds' CI"
  )
  return (
    f"{lead}: at {names['rate']:.0%} symmetric noise, the {n}-image half labelled twice with the audit's "
    f"conflicts removed ({images:.0f} images left, {rate:.1%} of their labels wrong) reaches "
    f"{_f(_m(findings, 'accuracy', cleaned))} test accuracy against {_f(_m(findings, 'accuracy', more))} for "
    f"2x the images with one noisy label each (paired difference {_said(d)})"
    + (
      f"; keeping both noisy labels without cleaning: {_f(_m(findings, 'accuracy', names['twice']))}."
      if names["twice"] in findings["accuracy"]
      else "."
    )
  )


def paragraphs(findings: dict, question: list[dict], noise_cost: list[dict], *, names: dict) -> list[str]:
  more, once, twice, cleaned, clean = (names[k] for k in ("more", "once", "twice", "cleaned", "half_clean"))
  rate = names["rate"]
  images, kept_rate = _kept(findings)
  n = findings["cleaning"]["images_per_half"]
  agree = (1 - rate) ** 2 + rate**2 / 9
  out = [
    f"**The budget, spent two ways.** Two labels per image of a {n}-image half, or one label per image of all of "
    f"them: with symmetric noise at {rate:.0%}, two independent labels agree with probability (1 - r)^2 + r^2 / 9 = "
    f"{agree:.2f}, and both are wrong yet equal with probability r^2 / 9 = {rate**2 / 9:.3f}; so the cleaning keeps "
    f"about {agree:.0%} of the images ({images:.0f} of {n} measured) with {rate**2 / 9 / agree:.1%} of their labels "
    f"wrong ({kept_rate:.1%} measured). Cleaned against 2x the noisy data: {_said(_diff(question, cleaned, more))}."
  ]
  rows = [
    (cleaned, once, "the cleaned half against the half labelled once"),
    (more, once, "2x the noisy images against the half labelled once"),
    (twice, once, "both noisy labels kept (no cleaning) against one"),
    (cleaned, twice, "removing the flagged conflicts from the twice-labelled half"),
    (twice, more, "both noisy labels of the half against 2x the noisy images"),
    (cleaned, clean, "the cleaned half against the same half with its true labels"),
  ]
  said = [f"{why}: {_said(_diff(question, a, b))}" for a, b, why in rows if _diff(question, a, b)]
  said[0:1] = [said[0][0].upper() + said[0][1:]] if said else []
  if said:
    out.append("**Around it** (paired differences of test accuracy). " + "; ".join(said) + ".")
  budget = [_diff(question, cleaned, more), _diff(question, cleaned, twice), _diff(question, twice, more)]
  if all(budget) and all(_tie(d) for d in budget):
    out.append(
      "**The budget, not how it is spent.** Two labels per image, with or without the conflicts removed, and one "
      "label per image of twice the images all land within the seeds' CI of each other, while one label per "
      f"image of the half alone is far below ({_f(_m(findings, 'accuracy', once))}): at this rate what counts is "
      "how many labels were paid for. The audit's cleaning step itself adds nothing the seeds can resolve over "
      "training on both noisy labels: in a conflicting pair one label is almost always right and the other points "
      "at a random class, so the pair still pulls toward the true class; dropping it removes that signal along with "
      "the noise, and half the images."
    )
  memorized = _memorized(findings, names)
  if memorized:
    out.append(memorized)
  single = findings["cleaning"]["conflicts_on_single_labels"]
  out.append(
    "**What the conflict finder can and cannot see.** It flags identical inputs whose labels disagree. "
    + (
      f"On the plain noisy training set, one label per image, it flags {single} conflicts"
      + (
        ": the digits hold no identical images, so however many labels are wrong, it has nothing to compare. "
        if single == 0
        else ". "
      )
      if single is not None
      else "(Not run on the single-labelled set in the quick run.) "
    )
    + "It finds noise only where an input was labelled more than once; every conflict it flags there holds at "
    "least one wrong label (precision 1 by construction), and what it misses is the pairs wrong in the same way."
  )
  out.append(_curve(findings, noise_cost))
  return out


def _memorized(findings: dict, names: dict) -> str:
  """Where a model fits its noisy labels beyond what the clean pattern explains: train accuracy above 1 - rate."""
  rows = []
  for key in (names["more"], names["once"], names["twice"]):
    train, flipped = findings["train_accuracy"].get(key), findings["flipped"].get(key)
    if train is None or train["mean"] is None or not flipped or flipped["mean"] is None:
      continue
    rate = findings["realized_rate"][key]["mean"]
    rows.append(f"{key} {train['mean']:.3f} against 1 - rate = {1 - rate:.3f}")
  if not rows:
    return ""
  return (
    f"**Memorizing the flips.** Training accuracy on the noisy labels: {'; '.join(rows)}. Above 1 - rate, a model "
    "reproduces flips it was shown rather than the true class; the fewer the images and the more often each is "
    "seen (the half alone is passed over twice as often in the same steps), the more it does."
  )


def _curve(findings: dict, noise_cost: list[dict]) -> str:
  if not noise_cost:
    return "**The cost of wrong labels.** Not measured in this run (the quick run trains one noise level)."
  costs = "; ".join(f"{d['a']} {d['mean']:+.3f} ({d['verdict']})" for d in noise_cost if d["mean"] is not None)
  best = findings["best_accuracy"]
  recovered = [
    f"{name} {_f(best[name]['mean'])}" for name in best if name != "no noise" and best[name]["mean"] is not None
  ]
  trains = [
    f"{name} {_f(findings['train_accuracy'][key]['mean'])}"
    for name, key in findings["curve_keys"].items()
    if name != "no noise"
  ]
  by_name = {d["a"]: d["mean"] for d in noise_cost}
  pair = ""
  if by_name.get("pairflip 0.2") is not None and by_name.get("symmetric 0.2") is not None:
    pair = (
      f" At the same rate, pairflip costs {-by_name['pairflip 0.2']:.3f} against symmetric's "
      f"{-by_name['symmetric 0.2']:.3f}: its flips are systematic (a fifth of every class's images carry the next "
      "class's label), a consistent pattern the model learns instead of noise that averages out."
    )
  return (
    f"**The cost of wrong labels** (all training images, final epoch, against no noise): {costs}.{pair} The best "
    f"epoch's test accuracy, the most any epoch selection could recover (picked on the test set: optimistic), is "
    f"{', '.join(recovered)}. The training accuracy against the noisy labels ({', '.join(trains)}) stays close "
    "to 1 - rate: with all 1437 images and the config's 30 epochs, the MLP mostly predicts the true class of a "
    "flipped image rather than memorizing the flip."
  )


def caveats(seeds: int, findings: dict) -> list[str]:
  return [
    f"{seeds} seeds per arm; one test image is {findings['resolution'] or 0:.4f} of accuracy, and a difference "
    "below it, or whose 95% CI contains 0, is a tie.",
    "One noise rate for the budget question. The arithmetic above moves with it: at a lower rate the cleaning "
    "keeps more images and more data has less noise to overcome; at a higher one the cleaning keeps fewer.",
    "Synthetic, symmetric, independent noise: two annotators err independently and uniformly. Real annotators err "
    "on the same hard images in the same way (correlated errors), which agree and pass the conflict finder: "
    "cleaning by agreement then keeps more wrong labels than here.",
    "The budget framing counts a second label of an image as costing what a label of a new image does; where "
    "new images are dear (or labels cheap) the comparison shifts.",
    "Every arm trains the same 330 optimizer steps; a smaller set is passed over more often.",
    "The best-epoch accuracy is picked on the test split itself (digits have no validation split here).",
  ]
