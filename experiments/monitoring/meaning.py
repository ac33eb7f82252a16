"""The report's words: the one-line answer, the setup, what to look for in each dashboard, and the caveats, every
number taken from the measured summaries (so a rerun's text follows its own numbers)."""

from __future__ import annotations

from experiments import harness_extras

HEALTHY, OVERFITTING, DIVERGING = "healthy", "overfitting", "diverging"


def _m(summary: dict, key: str, digits: int = 3) -> str:
  mean = summary[key]["mean"]
  return "-" if mean is None else f"{mean:.{digits}f}"


def _pct(summary: dict, key: str) -> str:
  mean = summary[key]["mean"]
  return "-" if mean is None else f"{100 * mean:.0f}%"


def _alert(summary: dict, key: str) -> str:
  a = summary["alerts"][key]
  where = f" at step {a['step']['mean']:.0f}" if a["step"] and a["step"]["mean"] is not None else ""
  return f"{a['fired']} of {a['seeds']} seeds{where}"


def _count(v: float | None) -> str:
  """A count averaged over seeds: '1' when every seed agrees, '1.4' when not."""
  return "-" if v is None else (f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}")


def _stop(probe: dict | None) -> str:
  if not probe:
    return ""
  return (
    f". With jaxflow's default `train.stop_on_divergence` the same run stops at step {probe['stopped_at_step']} "
    f"and its TensorBoard folder holds train loss up to step {probe['last_logged_step']} only "
    f"({probe['train_loss_events']} events; {_stop_point(probe)})"
  )


def _stop_point(probe: dict) -> str:
  """Whether the loss that stopped the run is among TensorBoard's points (older probes lack the key: no)."""
  if probe.get("stop_loss_logged"):
    return f"the last is the loss that stopped it, {probe['stop_loss']:.1f}"
  return "the loss that stopped it is not among them"


def _healthy_alerts(h: dict) -> str:
  fired = sum(a["fired"] for a in h["alerts"].values())
  seeds = next(iter(h["alerts"].values()))["seeds"]
  return f"no alert in any of {seeds} seeds" if not fired else f"{fired} alert(s) over {seeds} seeds (false alarms)"


def answer(s: dict, probe: dict | None) -> str:
  h, o, d = s[HEALTHY], s[OVERFITTING], s[DIVERGING]
  return (
    f"TensorBoard, on the events jaxflow writes, tells the three apart: healthy - train and eval loss fall "
    f"together (test accuracy {_m(h, 'final_test_accuracy')}, train-test gap {_m(h, 'accuracy_gap')}; "
    f"{_healthy_alerts(h)}); overfitting - the train loss falls to {_m(o, 'final_train_loss', 4)} while the eval "
    f"loss turns up after step {_m(o, 'best_eval_loss_step', 0)} and ends {_pct(o, 'eval_loss_rise')} above its "
    f"best under a flat eval accuracy (overfit alert {_alert(o, 'overfit_step')}; gap {_m(o, 'accuracy_gap')}, "
    f"test accuracy {_m(o, 'final_test_accuracy')}); diverging - the train loss jumps to "
    f"{_m(d, 'peak_loss_ratio', 1)}x its first value and the grad norm to {_m(d, 'peak_grad_norm', 0)} (jaxflow's "
    f"10x-loss rule {_alert(d, 'divergence_step')}, 10x grad norm {_alert(d, 'grad_spike_step')}), then the loss "
    f"sits at ln 10 (stuck-at-chance alert {_alert(d, 'chance_step')}) with test accuracy "
    f"{_m(d, 'final_test_accuracy')}, {_count(d['predicted_classes']['mean'])} class predicted in the confusion "
    f"image and kernels at std {_m(d, 'kernel_std_final', 2)} against {_m(h, 'kernel_std_final', 2)}"
    f"{_stop(probe)}."
  )


def setup(args, arms: dict, mode: str) -> list[str]:
  lines = [
    "Every run is configs/digits_mlp.py (2x256 relu MLP, Adam at lr 3e-3 with 20 warmup steps and a cosine decay, "
    "dropout 0.1, batch 128, 30 epochs = 330 steps on sklearn's 1437 training digits, 360 test digits) with the "
    "arm's overrides; jaxflow writes TensorBoard events to WORKDIR/tb (scalars every log, parameter histograms "
    "every `train.histogram_every` epochs, the confusion image every 10 epochs and at the end).",
    *[f"Arm **{name}**: {harness_extras.overrides_cell(o)}" for name, o in arms.items()],
    f"Each arm: `jaxflow.seeds(config, workdir, seeds={args.seeds}, vary='all', mode='{mode}')`; seed i of every "
    "arm draws the same init and data-order streams, so differences against healthy are paired.",
    "Every number is read back from the events with TensorBoard's EventAccumulator (size_guidance 0: all events). "
    "Alerts: divergence = a logged train loss not finite or above 10x the first logged one (jaxflow's own "
    "stop_on_divergence rule on the logged curve); overfitting = eval loss 10% above its best so far at 3 "
    "evaluations in a row while the train loss is below its value at that best; stuck at chance = final eval "
    "loss within 0.05 of ln 10.",
    "Screenshots: seed 0 of each arm in one TensorBoard (`python -m tensorboard.main --logdir ... --host "
    "127.0.0.1 --port <free>`), photographed by `chromium --headless --no-sandbox --disable-gpu "
    "--window-size=1400,1000 --virtual-time-budget=15000 --screenshot` at the legacy dashboards' URLs "
    "(`#scalars&regexInput=^run$&tagFilter=...&_smoothingWeight=0`, `#histograms&...`, `#images`); each picture "
    "checked for drawn (coloured) content and retaken once with a longer budget if blank.",
  ]
  if args.quick:
    tiny = harness_extras.overrides_cell(harness_extras.QUICK_MLP)
    lines.append(
      f"--quick: {args.seeds} seeds of the shared tiny model ({tiny}, {harness_extras.QUICK_TRAIN} training "
      "images); the quick overfitting arm trains as healthy does: structure only, the numbers mean nothing; "
      "no screenshots."
    )
  return lines


def paragraphs(s: dict, diffs: list[dict], probe: dict | None, shots: list) -> list[str]:
  h, o, d = s[HEALTHY], s[OVERFITTING], s[DIVERGING]
  shown = "see the screenshots" if shots else "see the plots; no screenshots in this run"
  out = [
    f"**Healthy** ({shown}). Scalars: train/loss and eval/loss fall together and flatten (final "
    f"{_m(h, 'final_train_loss', 3)} and {_m(h, 'final_eval_loss', 3)}), eval/accuracy climbs to "
    f"{_m(h, 'final_test_accuracy')} and stays; train/lr draws the warmup and the cosine; train/grad_norm stays "
    f"near 1 (peak {_m(h, 'peak_grad_norm', 2)}). Histograms: the kernels widen a little and keep their shape "
    f"(std {_m(h, 'kernel_std_first', 3)} at initialization, {_m(h, 'kernel_std_final', 3)} at the end). Images: the "
    f"confusion matrix is a dark diagonal. What to look for: the gap between the two loss curves stays small and "
    f"neither curve turns up. The train-test accuracy gap is {_m(h, 'accuracy_gap')}; the eval loss still ends "
    f"{_pct(h, 'eval_loss_rise')} above its best (the overfit alert: {_alert(h, 'overfit_step')}; its 10% "
    "margin and 3-evaluation patience are what separate this drift from overfitting).",
    f"**Overfitting** (100 training images, no dropout, 200 epochs). Scalars: train/loss keeps falling to "
    f"{_m(o, 'final_train_loss', 4)} and train accuracy reaches {_m(o, 'final_train_accuracy')}, while eval/loss "
    f"has its minimum at step {_m(o, 'best_eval_loss_step', 0)} and then climbs for the rest of the run "
    f"({_pct(o, 'eval_loss_rise')} above its best at the end). eval/accuracy does NOT show it: it stops at "
    f"{_m(o, 'final_test_accuracy')} (best {_m(o, 'best_test_accuracy')}), flat, not falling - the loss curves "
    f"are where overfitting is visible. Histograms: smooth bells that barely change (kernel std "
    f"{_m(o, 'kernel_std_final', 3)}). "
    f"Images: more counts off the diagonal than healthy's. What to look for: the two loss curves "
    f"moving apart, eval turning up while train goes down. The alert fired in {_alert(o, 'overfit_step')}.",
    f"**Diverging** (Adam at lr 1.0). Scalars: within the warmup the train loss leaves the chart "
    f"({_m(d, 'peak_loss_ratio', 1)}x its first value, grad_norm up to {_m(d, 'peak_grad_norm', 1)}), then falls "
    f"back to a flat line at 2.303 = ln 10 and stays there; eval/accuracy sits at {_m(d, 'final_test_accuracy')} "
    f"(chance). TensorBoard's default 'Ignore outliers in chart scaling' clips the spike: the chart shows lines "
    f"leaving the top and a y-axis around 2.3, so the flat line at ln 10 is the tell. Histograms: the kernels "
    f"are {_m(d, 'kernel_std_final', 2)} in std against {_m(h, 'kernel_std_final', 2)} for healthy (an x-axis "
    f"of several units instead of tenths), split into separate peaks, and the slices stay the same from epoch "
    f"to epoch once they have grown (from {_m(d, 'kernel_std_first', 2)} at initialization). Images: the confusion "
    f"matrix is one column ({_count(d['predicted_classes']['mean'])} class predicted for every image). Which "
    f"alert catches it: jaxflow's 10x-loss rule fired in {_alert(d, 'divergence_step')} (the other seeds' loss "
    f"peaks stayed below 10x: mean peak {_m(d, 'peak_loss_ratio', 1)}x), the 10x grad-norm rule in "
    f"{_alert(d, 'grad_spike_step')}, the stuck-at-chance rule in {_alert(d, 'chance_step')}: a monitor that "
    "only watches for a loss blow-up misses a run that blows up mildly and then dies.",
  ]
  if probe:
    out.append(
      f"With jaxflow's defaults (`train.stop_on_divergence=True`) the same config (seed 0) stops: status "
      f"'{probe['status']}' at step {probe['stopped_at_step']}, and its TensorBoard folder holds "
      f"{probe['train_loss_events']} train-loss events (up to step {probe['last_logged_step']}), "
      f"{probe['eval_events']} eval and {probe['histogram_events']} histogram events (its message: "
      f'"{probe["error"][:160]}"). '
      + (
        f"jaxflow monitored and stopped the run, and a person opening TensorBoard sees the spike that stopped it "
        f"(train loss {probe['stop_loss']:.1f} at step {probe['stopped_at_step']}, the last point) but no eval point "
        "and no later curve: the whole-run picture below needs the stop turned off."
        if probe.get("stop_loss_logged")
        else "jaxflow monitored and stopped the run, but a person opening TensorBoard sees a loss that had just "
        "started to rise and no eval point: the value that stopped the run is only in the message and summary.json."
      )
    )
  out.append(
    "Against the question: TensorBoard is such an application, and with the events jaxflow writes it shows all "
    "three failure pictures, but it only draws: it raises no alert, smooths (0.6 by default) and clips outliers "
    "by default, and someone has to look. The alerts above are the rules a person applies by eye, written as code "
    "on TensorBoard's own reader; jaxflow itself acts on divergence (stop_on_divergence, on by default: the 10x-loss "
    "rule above) and, when enabled, on a monitor metric that stops improving (early stopping, off by default); "
    "neither was measured here as an overfitting alarm."
  )
  return out


def caveats(args, no_shots: str) -> list[str]:
  out = [
    "One dataset and model (the 8x8 digits MLP); the thresholds (10x, 10% for 3 evaluations, 0.05 around ln 10) "
    "are choices, and the step an alert fires depends on them and on how often the run logs (every step for "
    "healthy and diverging, every epoch of 4 steps for overfitting's eval).",
    "The diverging arm turns jaxflow's divergence stop off so that TensorBoard has a whole run to show; with the "
    "default a user sees only the logs up to the stop (the probe paragraph).",
    "The screenshots show seed 0 only; the tables and plots cover every seed.",
    "The first histogram is written at initialization (step 0, before any update), the next after each "
    "`train.histogram_every` epochs: the diverging run's jump within epoch 1 shows "
    "as the step from the first slice to the second.",
  ]
  if no_shots:
    out.append(f"Screenshots skipped: {no_shots}.")
  if args.quick:
    out.append("A --quick run: tiny model, one epoch, two seeds; the numbers say nothing about the question.")
  return out
