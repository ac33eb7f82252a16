"""The words of the report, written from the numbers (a rerun with other numbers says what those show).

The claims tested: looking inside a trained CNN (its kernels, activation maps and saliency maps) is a way past
the black box; a saliency method is only evidence about the model if its maps change when the model's weights
are replaced by random ones (Adebayo et al. 2018: several popular methods fail this and show the input, an edge
detector, instead); and saliency should expose a model that decides by a shortcut (the tank story's light).
"""

from __future__ import annotations

from experiments.common import report
from experiments.interpretability.attribution import METHOD_NAMES, METHODS


def _row(rows: list[dict], comparison: str) -> dict | None:
  return next((r for r in rows if r["comparison"] == comparison), None)


def _m(summary: dict) -> str:
  return "-" if summary is None or summary["mean"] is None else f"{summary['mean']:.2f}"


def passing(summaries: dict, cnn: str, threshold: float) -> list[str]:
  """The methods whose mean rank correlation's 95% CI lies below `threshold` (all pixels)."""
  s = summaries[cnn]
  return [m for m in METHODS if (s[f"{m}/rank_correlation"]["ci95"] or [0, 1])[1] < threshold]


def revealing(shortcut: list[dict], rows: str) -> list[str]:
  """The methods whose background share is resolved higher for the shortcut model (paired, by the tie rule)."""
  out = []
  for m in METHODS:
    r = _row(shortcut, f"{m} {rows}")
    if r is not None and r["verdict"] != "tie" and r["mean"] > 0:
      out.append(m)
  return out


def _upper(text: str) -> str:
  return text[:1].upper() + text[1:]


def _names(methods: list[str]) -> str:
  return ", ".join(METHOD_NAMES[m] for m in methods) or "none"


def answer(summaries: dict, sanity: list[dict], shortcut: list[dict], names: tuple, threshold: float) -> str:
  cnn, short, decor = names
  s, a, b = summaries[cnn], summaries[short], summaries[decor]
  passed = passing(summaries, cnn, threshold)
  rhos = ", ".join(f"{METHOD_NAMES[m]} {_m(s[f'{m}/rank_correlation'])}" for m in METHODS)
  shares = ", ".join(
    f"{METHOD_NAMES[m]} {_m(a[f'{m}/background_share_day'])} vs {_m(b[f'{m}/background_share_day'])}" for m in METHODS
  )
  seen = revealing(shortcut, "day rows")
  return (
    f"By looking, with a sanity check: on the digits CNN (test accuracy {_m(s['accuracy'])}) "
    f"{len(passed)} of 4 saliency methods pass the model-randomization check ({_names(passed)}; rank correlation "
    f"of trained vs re-initialized maps: {rhos}; pass: 95% CI below {threshold}). On the tank task the shortcut CNN "
    f"(accuracy {_m(a['aligned'])} with the light as in training, {_m(a['conflicting'])} reversed) puts more of its "
    f"saliency on the background the light changes than the decorrelated CNN for {_names(seen)} (share on "
    f"background pixels, day photos: {shares}; an even map {_m(a['background_pixels'])})."
  )


def setup(args, model: tuple, quick: tuple, sizes: dict, names: tuple) -> list[str]:
  cnn, short, decor = names
  lines = [
    f"{args.seeds} seeds per arm through `jaxflow.seeds(..., vary='all', mode='sequential')` (vmap turns a CNN's "
    "convolutions into grouped ones, ~5x slower on CPU); seed i of every arm shares its streams (paired).",
    f"Model: configs/digits_cnn.py with {harness_extras_cell(quick if args.quick else model)} (a small CNN, few "
    "epochs: XLA:CPU's conv gradients are slow).",
    f"{cnn}: the 10 digits (1437 train / 360 test); every seed explained by `jaxflow.explain(workdir, "
    f"examples={sizes['examples']})` (its best checkpoint by test accuracy): kernels.png, activations_conv_*.png, "
    "saliency.png (vanilla gradient, gradient x input, SmoothGrad with 16 samples, integrated gradients with 64 "
    "steps from a black baseline) for the trained and a re-initialized model, and report.json's model-randomization "
    "rank correlations, which the table averages over seeds.",
    f"{short} and {decor}: experiments/sample_bias/data.py's binary tank task (digits 5-9 'tank'), every training "
    "photo in its class's light (tank by day: background lifted to 0.3) or the light independent of the label; "
    "its counterfactual test split (each of 360 test digits by day and by night).",
    f"Where the tank-task CNN looks: per seed, the latest checkpoint exported (`jaxflow.export`, `jaxflow.load_model`) "
    f"and the four methods computed by central differences on {2 * sizes['images']} test rows (the first "
    f"{sizes['images']} test digits by day and by night; SmoothGrad {sizes['samples']} samples, IG "
    f"{sizes['ig_steps']} midpoint steps), the score being the predicted class's margin; measured: the share of "
    "sum |attribution| on background pixels (no ink), the pixels the day light changes most.",
    "explain's pictures of seed 0 (the tank-task arms: the latest checkpoint, the best one removed first) are "
    "copied into the results.",
  ]
  return lines


def harness_extras_cell(overrides: tuple) -> str:
  return " ".join(f"`{o}`" for o in overrides)


def _even_words(a: dict, b: dict) -> str:
  """Whether the shortcut model's vanilla-gradient background share is nearer an even map's than the decorrelated
  model's (its mass spread over the whole image rather than on the strokes)."""
  even, short, decor = (
    x["mean"]
    for x in (a["background_pixels"], a["vanilla_gradient/background_share"], b["vanilla_gradient/background_share"])
  )
  if None in (even, short, decor):
    return ""
  nearer = abs(short - even) < abs(decor - even)
  return (
    f" The shortcut model's vanilla-gradient share ({short:.2f}) is {'nearer' if nearer else 'no nearer'} an even "
    f"map's ({even:.2f}) than the decorrelated model's ({decor:.2f})"
    + (
      ": its attribution is spread over the whole image, the decorrelated model's gathered on the strokes."
      if nearer
      else "."
    )
  )


def _caption_words(examples: dict, short: str) -> str:
  """What explain's captions of the shortcut model show: its prediction following the light."""
  rows = examples.get(short) or []
  if not rows:
    return ""
  follows = sum((r["prediction"] == 1) == (r["light"] == "day") for r in rows)
  return (
    f" In explain's pictures of it (explain_shortcut.png) {follows} of {len(rows)} explained test rows are predicted "
    "'tank' exactly when photographed by day: the captions, not the maps, show the light deciding. Its input "
    "column cannot show the light: explain scales each image to its own min..max, so a day photo (background "
    "0.3) is drawn exactly like its night copy."
  )


def paragraphs(
  summaries: dict, sanity: list[dict], shortcut: list[dict], names: tuple, threshold: float, examples: dict
) -> list[str]:
  cnn, short, decor = names
  s = summaries[cnn]
  passed = passing(summaries, cnn, threshold)
  failed = [m for m in METHODS if m not in passed]
  ink = ", ".join(f"{METHOD_NAMES[m]} {_m(s[f'{m}/rank_correlation_ink'])}" for m in METHODS)
  diffs = "; ".join(
    f"{METHOD_NAMES[r['a']]} - vanilla gradient {report.difference_text(r, 2)}"
    for r in sanity
    if r["comparison"] == "rank correlation"
  )
  multiplying = [m for m in ("gradient_x_input", "integrated_gradients") if m in failed]
  first = (
    "The sanity check. A saliency map is evidence about the model only if it depends on the model: with the "
    "trained weights replaced by random ones, its ranking of the pixels should change. "
    f"{_upper(_names(passed))} pass{'es' if len(passed) == 1 else ''} (rank correlation with the random model's "
    f"map, CI below {threshold}); {_names(failed)} {'do' if len(failed) != 1 else 'does'} not. Against the "
    f"vanilla gradient, seed by seed: {diffs}. On the pixels with ink alone: {ink}. "
    "The methods that multiply by the input (gradient x input, IG from a black baseline) are zero wherever the "
    "digit has no ink, in both models"
    + (
      f": for {_names(multiplying)} the input's own pattern dominates the map, so much of what it shows is the "
      "digit, not what the CNN learned: Adebayo et al.'s warning, measured here."
      if multiplying
      else ", yet they pass: the trained weights still reorder their maps."
    )
    + (
      f" On the ink alone {_names(ink_pass)} stay{'s' if len(ink_pass) == 1 else ''} below {threshold}: the weights do "
      "reorder the inked pixels, so those maps are not pure input, but a reader cannot tell the model's part from "
      "the digit's."
      if (ink_pass := [m for m in multiplying if (s[f"{m}/rank_correlation_ink"]["ci95"] or [0, 1])[1] < threshold])
      else ""
    )
  )
  a, b = summaries[short], summaries[decor]
  seen_all, seen_day = revealing(shortcut, "background share"), revealing(shortcut, "day rows")
  rows = "; ".join(f"{METHOD_NAMES[m]} {report.difference_text(_row(shortcut, f'{m} day rows'), 2)}" for m in METHODS)
  reversed_row = _row(shortcut, "conflicting accuracy")
  by_light = reversed_row is not None and reversed_row["verdict"] != "tie" and reversed_row["mean"] < 0
  second = (
    f"The shortcut. The CNN trained where the light follows the label scores {_m(a['aligned'])} on photos lit as in "
    f"training and {_m(a['conflicting'])} with the light reversed (decorrelated training: {_m(b['aligned'])} / "
    f"{_m(b['conflicting'])}; reversed, shortcut - decorrelated: {report.difference_text(reversed_row, 3)}): "
    + ("it decides by the light. " if by_light else "the seeds do not show it deciding by the light. ")
    + f"Its saliency mass on the background, which the light changes and the digit does not occupy, is resolved "
    f"higher than the decorrelated model's for {_names(seen_day)} on day photos ({rows}; shortcut - decorrelated) "
    f"and for {_names(seen_all)} over all rows. Even where it is, a reader of one map sees at most that the model "
    "'looks around' the digit; no map says 'brightness': the light is a global change of every background pixel, "
    "and a per-pixel attribution spreads it over them." + _even_words(a, b) + _caption_words(examples, short)
  )
  maps_words = (
    f"the maps as a shift of mass for {_names(seen_day)}" if seen_day else "the maps not at all (ties for every method)"
  )
  third = (
    "What it means for the workflow's question. Kernel pictures and activation maps show what the first layer's "
    "3x3 filters respond to and where each feature map fires on a digit (explain_cnn_kernels.png, "
    "explain_cnn_activations_*.png), but they describe the layers, not a decision. Saliency describes a decision, "
    "and only the methods that pass the randomization check should be read as the model's; a planted shortcut shows "
    "in the maps only when they are compared against a model known to be free of it. The black box is opened by "
    "measurements with controls (randomized weights, a decorrelated model, the counterfactual test split), not by "
    "pictures alone: "
    + (
      f"the counterfactual test exposed the shortcut plainly (reversed accuracy {_m(a['conflicting'])}), "
      if by_light
      else ""
    )
    + maps_words
    + "."
  )
  return [first, second, third]


def caveats(args) -> list[str]:
  out = [
    "One small CNN (two conv layers, 8 and 16 channels) on 8x8 digits, 15 epochs (330 steps): larger images and "
    "deeper models change how each method looks; Adebayo et al.'s models were ImageNet-scale.",
    "The randomization check uses explain's full re-initialization (every layer at once); the cascading version "
    "(layer by layer from the top) is not measured. Its threshold (CI below 0.5) is a convention of this study "
    "and of jaxflow's own explain test, not a standard.",
    "The tank-task maps are central differences through the exported program (it has no derivative): step 1e-3 "
    "in float32, fewer SmoothGrad samples and IG steps than explain's pictures, on the first digits of the test "
    "split only; explain's pictures of the same runs use its own settings.",
    "'Background' is where the unlit digit has no ink: the digit's shape is also in its empty pixels, so some "
    "background mass is legitimate for a model of the shape (the decorrelated arm shows how much).",
    "explain draws each input scaled to its own min..max: an affine change of brightness, the planted shortcut "
    "itself, is invisible in its pictures (a day photo looks like its night copy); only the captions' predictions "
    "and this study's numbers show it.",
    "explain reads a run's best checkpoint (by eval accuracy); for the tank-task pictures the study removes it so "
    "explain falls back to the latest (a gap: explain has no checkpoint choice and writes no saliency arrays).",
  ]
  if args.quick:
    out.insert(0, "Quick run: three optimizer steps of a tiny CNN, 2 seeds, a few rows: the numbers mean nothing.")
  return out
