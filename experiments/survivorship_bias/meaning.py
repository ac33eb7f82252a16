"""The words of the report, written from the numbers (a rerun with other numbers says what those show).

The claims tested: "when the data that reaches you is filtered by the outcome, conclusions invert" (the engine's
effect learned from the record against the population's, and the outcome-only control), and "the audit or a
held-out unfiltered sample reveals it" (what jaxflow.audit flags, and each model on the unfiltered sample).
"""

from __future__ import annotations

from experiments.common import report
from experiments.survivorship_bias import data
from experiments.survivorship_bias.measure import rate_gap

REFERENCE, RECORDED, CONTROL = "population", "recorded", "outcome-only"


def _row(rows: list[dict], comparison: str, a: str) -> dict | None:
  return next((r for r in rows if r["comparison"] == comparison and r["a"] == a), None)


def _ci(s: dict, digits: int = 2) -> str:
  if s["mean"] is None:
    return "not measured"
  ci = s["ci95"]
  return f"{s['mean']:+.{digits}f}" + (f" [{ci[0]:+.{digits}f}, {ci[1]:+.{digits}f}]" if ci else "")


def _diff(row: dict | None, digits: int = 2) -> str:
  return report.difference_text(row, digits)


def _rate(v) -> str:
  return "-" if v is None else f"{v:.2f}"


def _m(s: dict, key: str, digits: int = 2) -> str:
  return "-" if s[key]["mean"] is None else f"{s[key]['mean']:.{digits}f}"


def _inverted(summaries: dict, rows: list[dict]) -> bool:
  """The record's engine effect is resolved below the population's, and its whole interval lies below zero."""
  row, ci = _row(rows, "effect/engine", RECORDED), summaries[RECORDED]["effect/engine"]["ci95"]
  return bool(row and row["verdict"] != "tie" and row["mean"] < 0 and ci and ci[1] < 0)


def answer(summaries: dict, rows: list[dict], audits: dict) -> str:
  pop, rec = summaries[REFERENCE], summaries[RECORDED]
  verdict = "Yes" if _inverted(summaries, rows) else "Not resolved"
  line = (
    f"{verdict}: trained on what reaches the analyst (returning planes and the wrecks over friendly ground), the model "
    f"rates one more engine hit at {_ci(rec['effect/engine'])} log odds of loss (rank "
    f"{_m(rec, 'engine_rank', 1)} of 6: 'engines need no armour'), trained on all sorties at "
    f"{_ci(pop['effect/engine'])} (rank {_m(pop, 'engine_rank', 1)}; truth {data.LETHALITY[0]:+.2f}; a logistic "
    f"regression on the record: {_ci(rec['linear/engine'])})"
  )
  if CONTROL in summaries:
    line += (
      f"; filtered on the outcome alone it stays at {_ci(summaries[CONTROL]['effect/engine'])} "
      f"({_diff(_row(rows, 'effect/engine', CONTROL))} vs all sorties): the inversion needs a filter that also "
      "depends on where the plane was hit"
    )
  if RECORDED in audits:
    a = audits[RECORDED]
    engine = a["sections"]["engine"]
    line += (
      f". Revealed by jaxflow.audit against an unfiltered sample (lost {a['lost_share']['train']:.0%} vs "
      f"{a['lost_share']['test']:.0%}, label shift {'flagged' if a['label_shift']['flagged'] else 'not flagged'}; "
      f"most shifted feature {a['most_shifted']['section']}; engine hits ~ loss Cramér's V "
      f"{engine['train']['cramers_v']:.2f} in the record vs {engine['test']['cramers_v']:.2f} unfiltered, loss rate "
      f"with vs without engine hits {rate_gap(a, 'engine', 'train'):+.2f} vs {rate_gap(a, 'engine', 'test'):+.2f})"
    )
  return (
    line + f", and on the unfiltered sample by the record's model's calibration for planes with 2+ engine hits "
    f"(ECE {_m(rec, 'engine_2+/ece')} vs {_m(pop, 'engine_2+/ece')})."
  )


def setup(filters, sizes: data.Sizes, args, model_overrides, counts: dict) -> list[str]:
  sections = ", ".join(
    f"{s} {a:.1f}/{b:+.2f}" for s, a, b in zip(data.SECTIONS, data.AREA, data.LETHALITY, strict=True)
  )
  lines = [
    "Data (experiments/survivorship_bias/data.py, numpy): each sortie flies through fire of intensity heat ~ "
    f"Gamma({data.HEAT_SHAPE:g}, 1/{data.HEAT_SHAPE:g}); section s takes Poisson(area_s x heat) hits; the plane is "
    f"lost with probability sigmoid({data.BASE_LOGIT} + sum_s lethality_s x hits_s). Area (mean hits per sortie) / "
    f"lethality (log odds per hit): {sections}.",
    f"The record (what reaches the analyst): every returning plane; a lost plane only if it came down over friendly "
    f"ground, probability {data.FRIENDLY_LOST} x exp(-{data.ENGINE_DROP} x engine hits) (an engine-hit plane goes "
    "down at once, over enemy ground). By Bayes, a perfect model of the record learns the engine effect "
    f"{data.LETHALITY[0]} - {data.ENGINE_DROP} = {data.recorded_engine_effect():+.1f} and every other section's truth.",
    f"Per seed i, a fresh war from np.random.default_rng([{data.DATA_SEED}, i]): an unfiltered held-out sample of "
    f"{sizes.test} sorties (every arm's eval split) and a pool of {sizes.pool} further sorties from which each arm's "
    f"training split of {sizes.train} planes is taken. One NPZ (x = hits float32 [n, 6], `lost`, `split`, "
    "hits_<section> as 0/1/2+) holds every seed's splits, read with `data.name=npz:PATH`.",
  ]
  for f in filters:
    c = counts.get(f.kind)
    share = f" (seed 0: {c['loss_rate']:.1%} lost)" if c else ""
    lines.append(f"Arm '{f.name}': {f.what}{share}.")
  lines += [
    f"Model: {data.LABEL} = 1 as a binary problem (`problem.kind=binary`, BCE), configs/digits_mlp.py's Adam 3e-3 "
    f"cosine schedule, no dropout, with {', '.join(f'`{o}`' for o in model_overrides)}; the six hit counts "
    "standardized on the training split (jaxflow's default for npz: feature vectors).",
    f"Seeds: {args.seeds}; seed i of every arm trains on seed i's war with `seed=i` through jaxflow.seeds(seeds=1) "
    "(experiments.harness_extras.per_seed_arm), so arms are paired by seed and the intervals cover the draw of the "
    "planes as well as training.",
    "Effect of a section: each seed's final parameters exported (`jaxflow.export`, checkpoint='latest': the best "
    "checkpoint would be chosen on the unfiltered sample) and loaded back (`jaxflow.load_model`); the mean over the "
    "unfiltered sample's planes of logit p(hits + one hit in the section) - logit p(hits).",
    "Audit: `jaxflow.audit` of seed 0's training split against seed 0's unfiltered sample, the hits per section as "
    "`data.metadata_features`.",
  ]
  if args.quick:
    lines.append(f"Quick run: two arms, {sizes.train} training planes, one audit; the numbers mean nothing.")
  return lines


def _hangar(wald: dict) -> str:
  per_area = {s: w["returned_per_area"]["mean"] for s, w in wald.items()}
  ratio = {s: w["ratio"]["mean"] for s, w in wald.items()}
  top = sorted(per_area, key=per_area.get, reverse=True)[:2]
  naive, wald_pick = top[0], min(ratio, key=ratio.get)
  by_ratio = sorted(ratio, key=ratio.get)
  truth = [s for _, s in sorted(zip(-data.LETHALITY, data.SECTIONS, strict=True))]
  order = "the order of the true lethality" if by_ratio == truth else f"not quite the true order ({', '.join(truth)})"
  return (
    f"The hangar (the analysts' evidence): per unit of exposed area the returning planes carry the most holes on the "
    f"{naive} ({per_area[naive]:.2f}) and the {top[1]} ({per_area[top[1]]:.2f}), the fewest on the "
    f"{min(per_area, key=per_area.get)} ({min(per_area.values()):.2f}); armouring where the holes are means the "
    f"{naive} and the {top[1]}. Against all sorties (uniform fire: one hole per unit area on every section), the "
    f"returning planes keep {ratio[wald_pick]:.0%} of the {wald_pick}'s holes and {max(ratio.values()):.0%} of the "
    f"{max(ratio, key=ratio.get)}'s: the missing holes are on the planes that did not come back. Returned / all, "
    f"lowest first, ranks the sections {', '.join(by_ratio)}: {order}. That is Wald's reading, and it needs a number "
    "the hangar does not hold: how many hits each section takes on all sorties."
  )


def _engine_losses(audits: dict) -> str:
  """How many lost planes with engine hits the record holds (seed 0's audit table), or '' without the audit."""
  if RECORDED not in audits:
    return ""
  table = audits[RECORDED]["sections"]["engine"]["train"]["table"]
  return f" (seed 0's record holds {sum(row[1] for row in table[1:])} lost planes with engine hits)"


def _linear(rec: dict, audits: dict) -> str:
  """The logistic regression's engine coefficient on the record against the perfect model's and the MLP's."""
  lin, mlp = rec["linear/engine"], rec["effect/engine"]
  if lin["mean"] is None or mlp["mean"] is None:
    return ""
  bayes = data.recorded_engine_effect()
  covers = lin["ci95"] is not None and lin["ci95"][0] <= bayes <= lin["ci95"][1]
  return (
    f"A logistic regression on the same records (the truth's own form) finds {_ci(lin)}, "
    + ("which covers the perfect model's value" if covers else f"against the perfect model's {bayes:+.1f}")
    + f"; the MLP's average finite difference departs from it by {mlp['mean'] - lin['mean']:+.2f}, where it "
    f"extrapolates to engine-hit counts the record barely holds{_engine_losses(audits)}. "
  )


def _model(summaries: dict, rows: list[dict], audits: dict) -> str:
  pop, rec = summaries[REFERENCE], summaries[RECORDED]
  others = [s for s in data.SECTIONS[1:] if (r := _row(rows, f"effect/{s}", RECORDED)) and r["verdict"] == "tie"]
  text = (
    f"The model of the record: one more engine hit {_ci(rec['effect/engine'])} log odds of loss against "
    f"{_ci(pop['effect/engine'])} for the model of all sorties (paired: "
    f"{_diff(_row(rows, 'effect/engine', RECORDED))}); "
    f"a perfect model of the record would say {data.recorded_engine_effect():+.1f}. "
  )
  text += (
    "The sign inverts: in the record, engine hits go with returning. "
    if _inverted(summaries, rows)
    else "The seeds do not resolve an inverted sign here. "
  )
  text += _linear(rec, audits)
  text += (
    f"Sections the filter does not read tie with the population's effects ({', '.join(others) or 'none'} of "
    f"{len(data.SECTIONS) - 1}): the distortion sits on the feature the filter depends on. Armour-first choice per "
    f"seed: {', '.join(filter(None, rec['armour_first']))} (record) vs {', '.join(filter(None, pop['armour_first']))} "
    "(all sorties)."
  )
  return text


def _control(summaries: dict, rows: list[dict]) -> str | None:
  if CONTROL not in summaries:
    return None
  c = summaries[CONTROL]
  ties = [s for s in data.SECTIONS if (r := _row(rows, f"effect/{s}", CONTROL)) and r["verdict"] == "tie"]
  return (
    f"Where this disagrees with the workflow's phrasing: filtering by the outcome alone does not invert anything. "
    f"The outcome-only control keeps the same returned planes and as many lost planes as the record, drawn at random: "
    f"its engine effect is {_ci(c['effect/engine'])} ({_diff(_row(rows, 'effect/engine', CONTROL))} vs all sorties) "
    f"and {len(ties)} of {len(data.SECTIONS)} sections tie with the population's. What it gets wrong is the base "
    f"rate: it predicts {_m(c, 'predicted_loss_rate')} of the unfiltered planes lost where "
    f"{_m(c, 'observed_loss_rate')} are (the record's model: {_m(summaries[RECORDED], 'predicted_loss_rate')}). A log "
    "odds ratio survives selection on the outcome (the case-control property); the conclusion inverts when the "
    "outcome you lose is filtered again by the feature (the lost planes you do see are those not hit in the engine)."
  )


def _audit(audits: dict) -> str | None:
  if RECORDED not in audits:
    return None
  a = audits[RECORDED]
  e = a["sections"]["engine"]
  text = (
    f"The audit of the record against the unfiltered sample flags the label shift (lost {a['lost_share']['train']:.1%} "
    f"vs {a['lost_share']['test']:.1%}, TVD {a['label_shift']['total_variation']:.2f}) and an input shift (KS D "
    f"{a['input_shift']['ks_statistic']:.2f}), largest on the {a['most_shifted']['section']} (SMD "
    f"{a['most_shifted']['smd']:+.2f}). Its per-split tables "
    + (
      "show the inversion itself"
      if (rate_gap(a, "engine", "train") or 0) < 0 < (rate_gap(a, "engine", "test") or 0)
      else "do not show the engine's sign inverted"
    )
    + f": the loss rate at 0 / 1 / 2+ "
    f"engine hits is {' / '.join(_rate(v) for v in e['train']['loss_rate'])} in the record and "
    f"{' / '.join(_rate(v) for v in e['test']['loss_rate'])} unfiltered (Cramér's V {e['train']['cramers_v']:.2f} "
    f"vs {e['test']['cramers_v']:.2f}). "
  )
  if CONTROL in audits:
    c = audits[CONTROL]
    text += (
      f"The outcome-only split is flagged for label shift too (TVD {c['label_shift']['total_variation']:.2f}), but "
      f"its engine table keeps the direction ({rate_gap(c, 'engine', 'train'):+.2f} with vs without engine hits, "
      f"unfiltered {rate_gap(c, 'engine', 'test'):+.2f}): the audit's flags say the data was filtered, only the "
      "per-split association says which conclusion the filter bends. "
    )
  if REFERENCE in audits:
    p = audits[REFERENCE]
    text += (
      f"An unfiltered training split raises no label shift (TVD {p['label_shift']['total_variation']:.3f}, "
      f"{'flagged' if p['label_shift']['flagged'] else 'not flagged'}). "
    )
  return text + (
    "All of it needs the unfiltered sample: an audit of the record alone has no split to compare with. The audit's "
    "duplicate, leakage and conflicting-label findings are expected on six small counts (few distinct hit patterns, "
    "the same pattern both lost and returned) and say nothing about survivorship."
  )


def _evaluation(summaries: dict, rows: list[dict]) -> str:
  pop, rec = summaries[REFERENCE], summaries[RECORDED]
  return (
    f"On the unfiltered sample, the record's model reaches accuracy {_m(rec, 'accuracy', 3)} against "
    f"{_m(pop, 'accuracy', 3)} ({_diff(_row(rows, 'accuracy', RECORDED), 3)}), balanced accuracy "
    f"{_m(rec, 'balanced_accuracy', 3)} vs {_m(pop, 'balanced_accuracy', 3)}. Its calibration error by engine hits "
    f"0 / 1 / 2+ is {' / '.join(_m(rec, f'engine_{b}/ece') for b in data.BUCKETS)} (all sorties' model: "
    f"{' / '.join(_m(pop, f'engine_{b}/ece') for b in data.BUCKETS)})"
    + (
      ": the errors concentrate where the filter removed the evidence, which jaxflow's per-group metrics "
      "(`data.group_feature`) show once an unfiltered sample is the eval split."
      if (rec["engine_2+/ece"]["mean"] or 0) > 2 * (rec["engine_0/ece"]["mean"] or 0)
      else ": no concentration on engine-hit planes at this resolution."
    )
  ) + (
    f" The outcome-only model is off everywhere instead (ECE "
    f"{' / '.join(_m(summaries[CONTROL], f'engine_{b}/ece') for b in data.BUCKETS)}): its base rate, not its engine."
    if CONTROL in summaries
    else ""
  )


def paragraphs(summaries: dict, rows: list[dict], audits: dict, wald: dict) -> list[str]:
  out = [
    _hangar(wald),
    _model(summaries, rows, audits),
    _control(summaries, rows),
    _audit(audits),
    _evaluation(summaries, rows),
  ]
  return [p for p in out if p]


def caveats(args, sizes: data.Sizes) -> list[str]:
  return [
    "The war is generated: a logistic truth, hits independent given the fire's intensity, and a known filter. The "
    f"size of the inversion is set by ENGINE_DROP={data.ENGINE_DROP}: any value above the engine's lethality "
    f"({data.LETHALITY[0]}) inverts the sign, a smaller one only shrinks the effect.",
    f"{args.seeds} seeds; each is a fresh draw of the planes and a fresh training run, so the intervals cover both, "
    "but not other generating parameters.",
    "The effect is a finite difference of an MLP's log odds averaged over the unfiltered sample's planes, not a "
    "regression coefficient. The record holds few lost planes with engine hits (seed 0: see the audit table), so "
    "its model extrapolates there and may overshoot the perfect model's value.",
    "The audit ran on seed 0's data only (it reads the data, not the model; one draw shows its behaviour). Its "
    "duplicate and leakage findings are artifacts of count features.",
    "The held-out unfiltered sample is the experimenter's privilege: in Wald's hangar there was none. Without one, "
    "only knowledge of the filter (where planes go down) can correct the record.",
    f"Accuracy on {sizes.test} sorties has resolution 1/{sizes.test}; effects, losses and ECE have no resolution "
    "of their own here and are judged on their intervals alone.",
    "The question is phrased from the project's issue (the planes story); the workflow's own wording is not in the "
    "repository.",
  ]
