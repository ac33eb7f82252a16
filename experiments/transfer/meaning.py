"""The words of the report, written from the numbers (a rerun with other numbers says what those show).

The claims tested: "keep the early layers, retrain the later ones" (freezing the early conv layers of a network
pretrained on a related task beats training from scratch when the target set is small), the gain shrinks as the
target set grows, and freezing more is better when data is scarcer. The old study (3 seeds, conv frozen, 40
epochs) found transfer from 0-4 worse than scratch at every size; it is restated only where this run agrees.
"""

from __future__ import annotations


def _verdicts(f: dict) -> dict[str, dict]:
  return {d["a"]: d for d in f["versus_scratch"]}


def answer(findings: dict, scratch: str) -> str:
  parts = []
  for n, f in findings.items():
    v = _verdicts(f)
    best = next(a for a, _ in f["ranking"] if a != scratch)
    better = [a for a, d in v.items() if d["verdict"] == f"{a} better"]
    worse = [a for a, d in v.items() if d["verdict"] == f"{scratch} better"]
    parts.append(
      f"n={n}: scratch {f['accuracy'][scratch]['mean']:.3f}, best transfer arm {best} "
      f"{f['accuracy'][best]['mean']:.3f}; "
      f"better than scratch: {', '.join(better) or 'none'}" + (f", worse: {', '.join(worse)}" if worse else "")
    )
  return "Against training from scratch on the same 5-9 images (paired, 95% CI): " + "; ".join(parts) + "."


def paragraphs(findings: dict, scratch: str, claim: str, source: dict) -> list[str]:
  out = []
  rows = []
  for n, f in findings.items():
    v = _verdicts(f)
    rows.append(
      f"n={n}: " + ", ".join(f"{a} {d['mean']:+.3f} ({d['verdict']})" for a, d in v.items() if d["mean"] is not None)
    )
  out.append(
    f"**Against scratch.** Pretrained on 0-4 (test accuracy there {source:.3f}), then trained on n images "
    f"of 5-9, minus scratch on the same images: {'; '.join(rows)}."
  )
  out.append(_claim(findings, scratch, claim))
  out.append(_which_layers(findings, scratch))
  out.append(_fitted(findings))
  return out


def _claim(findings: dict, scratch: str, claim: str) -> str:
  sizes = list(findings)
  helped = {n: [a for a, d in _verdicts(f).items() if d["verdict"] == f"{a} better"] for n, f in findings.items()}
  hurt = {n: [a for a, d in _verdicts(f).items() if d["verdict"] == f"{scratch} better"] for n, f in findings.items()}
  frozen = [a for a in _verdicts(findings[sizes[0]]) if a.startswith("freeze")]
  small = sizes[0]
  if any(a in helped[small] for a in frozen):
    verdict = (
      f"At the smallest size (n={small}) it holds: {', '.join(a for a in frozen if a in helped[small])} beat scratch."
    )
  elif any(a in hurt[small] for a in frozen):
    verdict = (
      f"At the smallest size (n={small}) it does not hold: {', '.join(a for a in frozen if a in hurt[small])} "
      "lose to scratch, which disagrees with the claim."
    )
  else:
    verdict = f"At the smallest size (n={small}) the seeds cannot tell freezing from scratch."
  trend = ", ".join(f"n={n}: {len(helped[n])} better, {len(hurt[n])} worse" for n in sizes)
  never = not any(helped.values())
  old = (
    " As the earlier version of this study found (3 seeds, both conv layers frozen, 40 epochs, medians: -0.11, -0.02, "
    "-0.01 against scratch at n = 20, 50, 200), transfer from 0-4 beats scratch at no size here."
    if never
    else ""
  )
  return (
    f"**The claim: '{claim}'.** {verdict} Arms (of {len(_verdicts(findings[small]))}) resolved against scratch per "
    f"size: {trend}.{old} Digits 0-4 and 5-9 share strokes but not shapes; features learned on five digits are a "
    "narrow start, unlike a network trained on millions of varied images, which is what the claim assumes."
  )


def _which_layers(findings: dict, scratch: str) -> str:
  rows = []
  for n, f in findings.items():
    means = {a: s["mean"] for a, s in f["accuracy"].items() if a != scratch and s["mean"] is not None}
    if means:
      order = sorted(means, key=means.get, reverse=True)
      rows.append(f"n={n}: " + " > ".join(f"{a} {means[a]:.3f}" for a in order))
  resolved = {
    n: [(a, b) for a, beaten in f["ranking"] for b in beaten if scratch not in (a, b)] for n, f in findings.items()
  }
  said = "; ".join(
    f"n={n}: " + (", ".join(f"{a} > {b}" for a, b in pairs) if pairs else "no pair resolved")
    for n, pairs in resolved.items()
  )
  return (
    f"**Which layers to freeze.** Means, best first: {'; '.join(rows)}. Resolved between the transfer arms (paired): "
    f"{said}. Freezing more keeps more of what 0-4 taught and trains fewer parameters on the few 5-9 images; "
    "fine-tuning all lets the early layers adapt too."
  )


def _fitted(findings: dict) -> str:
  rows = []
  for n, f in findings.items():
    t = [f"{a} {s['mean']:.2f}" for a, s in f["train_accuracy"].items() if s["mean"] is not None]
    rows.append(f"n={n}: {', '.join(t)}")
  probe = {
    n: f["train_accuracy"]["freeze all but head"]["mean"]
    for n, f in findings.items()
    if f["train_accuracy"].get("freeze all but head", {}).get("mean") is not None
  }
  low = {n: v for n, v in probe.items() if v < 0.9}
  return f"**Fitted?** Training accuracy in the last epoch (dropout on): {'; '.join(rows)}." + (
    " With everything but the head frozen the model cannot even fit its training images ("
    + ", ".join(f"{v:.2f} at n={n}" for n, v in low.items())
    + "): the features the 0-4 network computes do not separate 5-9 linearly, so whatever is kept of them has "
    "to be retrained to serve the new classes."
    if low
    else ""
  )


def caveats(seeds: int, findings: dict) -> list[str]:
  resolution = next(iter(findings.values()))["resolution"] or 0
  return [
    f"{seeds} seeds per arm; one 5-9 test image is {resolution:.4f} of accuracy; a difference below that, or whose "
    "95% CI contains 0, is a tie.",
    "The source task is close and small (5 digit classes, ~720 images of 8x8): the classic transfer setting "
    "(ImageNet features for a new photo task) has a far richer source; this measures transfer between two halves "
    "of one small dataset.",
    "Every arm trains the same 200 optimizer steps with the config's learning rate (3e-3, cosine), the same for "
    "fine-tuning and scratch; a smaller fine-tuning learning rate is common practice and not measured here.",
    "The CNN has two conv layers, so 'one, two, all conv layers' is one or both; 'all but head' adds dense_0.",
    "One pretrained network (seed 0) is the start of every seed: the seeds' spread covers the target subset, "
    "order, dropout and the new head, not the pretraining; another pretraining run could transfer better or worse.",
  ]
