"""The initialization study's figures: per-layer activation std and gradient norm (log scale) at initialization
and after training, one line per scheme, relu and sigmoid apart (vanishing and exploding show as lines that fall
or climb with depth); final accuracy per scheme with its 95% CI, and distinct units after training."""

from __future__ import annotations

import numpy as np

from experiments.common import plots

COLORS = {"constant": "C7", "too small": "C0", "too large": "C3", "xavier": "C2", "he": "C1"}


def _split(name: str) -> tuple[str, str]:
  activation, scheme = name.split(" / ")
  return activation, scheme


def _activations(s: dict) -> list[str]:
  return list(dict.fromkeys(_split(n)[0] for n in s))


def per_layer(out: str, s: dict, stat: str, file: str, label: str) -> str:
  acts = _activations(s)
  fig = plots.figure(11.0, 3.8 * len(acts))
  for row, activation in enumerate(acts):
    for col, (when, title) in enumerate((("layers_init", "at initialization"), ("layers_trained", "after training"))):
      ax = fig.add_subplot(len(acts), 2, 2 * row + col + 1)
      for name, f in s.items():
        a, scheme = _split(name)
        by_layer = f[when].get(stat, {})
        if a != activation or not by_layer:
          continue
        names = list(by_layer)
        values = [np.nan if v is None or v <= 0 else v for v in by_layer.values()]
        ax.plot(range(len(names)), values, marker="o", ms=3, color=COLORS.get(scheme, "0.4"), label=scheme)
        ax.set_xticks(range(len(names)), names, fontsize=7, rotation=30)
      ax.set_yscale("log")
      ax.set_title(f"{activation}: {label}, {title}", fontsize=9)
      ax.set_xlabel("layer (input side first)", fontsize=8)
      ax.grid(alpha=0.3, which="both")
      if col == 0:
        ax.legend(fontsize=7)
  return plots.save(fig, out, file)


def accuracy_figure(out: str, s: dict) -> str:
  acts = _activations(s)
  fig = plots.figure(11.0, 4.0)
  ax = fig.add_subplot(1, 2, 1)
  schemes = list(dict.fromkeys(_split(n)[1] for n in s))
  for j, activation in enumerate(acts):
    xs, summaries = [], []
    for i, scheme in enumerate(schemes):
      name = f"{activation} / {scheme}"
      if name in s:
        xs.append(i + 0.15 * j)
        summaries.append(s[name]["accuracy"])
    plots.error_bars(ax, xs, summaries, color=f"C{j}", ls="none", label=activation)
  ax.set_xticks(range(len(schemes)), schemes, fontsize=8)
  ax.set(ylabel="test accuracy (final)", ylim=(0, 1.02))
  ax.axhline(0.1, color="0.5", ls=":", lw=1)
  ax.set_title("Final test accuracy, mean and 95% CI over seeds (dotted: chance)", fontsize=9)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  ax = fig.add_subplot(1, 2, 2)
  width = 0.8 / max(1, len(acts))
  for j, activation in enumerate(acts):
    heights = [s.get(f"{activation} / {sc}", {}).get("min_distinct_units", {}).get("mean") or 0 for sc in schemes]
    ax.bar(np.arange(len(schemes)) + j * width, heights, width, color=f"C{j}", label=activation)
  ax.set_xticks(np.arange(len(schemes)) + width * (len(acts) - 1) / 2, schemes, fontsize=8)
  ax.set_yscale("log")
  ax.set(ylabel="distinct units (fewest over hidden layers)")
  ax.set_title("After training: how many different units a layer holds", fontsize=9)
  ax.grid(alpha=0.3, axis="y")
  ax.legend(fontsize=8)
  return plots.save(fig, out, "accuracy_and_units.png")


def draw(out: str, s: dict) -> list[tuple[str, str]]:
  return [
    ("Final accuracy and distinct units per scheme", accuracy_figure(out, s)),
    ("Activation std per layer, at init and after training", per_layer(out, s, "act_std", "act_std.png", "act std")),
    (
      "Gradient norm per layer, at init and after training",
      per_layer(out, s, "grad_norm", "grad_norm.png", "grad norm"),
    ),
  ]
