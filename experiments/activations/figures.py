"""The activations study's figures: learning curves (test accuracy per epoch, mean and 95% band over seeds),
and per-layer gradient norms and activation statistics (where each activation saturates or fades)."""

from __future__ import annotations

import numpy as np

from experiments.common import plots

COLORS = {"step": "C3", "sigmoid": "C1", "tanh": "C2", "relu": "C0", "gelu": "C4"}


def _color(name: str) -> str:
  return COLORS.get(name, "0.4")


def learning_curves(out: str, s: dict) -> str:
  fig = plots.figure(7.0, 4.2)
  ax = fig.add_subplot(1, 1, 1)
  for name, f in s.items():
    curve = [c for c in f["curve"] if c["mean"] is not None]
    epochs = np.arange(1, len(curve) + 1)
    mean = np.array([c["mean"] for c in curve])
    low = np.array([(c["ci95"] or [c["mean"]] * 2)[0] for c in curve])
    high = np.array([(c["ci95"] or [c["mean"]] * 2)[1] for c in curve])
    ax.plot(epochs, mean, color=_color(name), label=name, marker="o", ms=2)
    ax.fill_between(epochs, low, high, color=_color(name), alpha=0.2)
  ax.set(xlabel="epoch (11 optimizer steps each)", ylabel="test accuracy")
  ax.set_title("Learning curves: mean and 95% CI over seeds", fontsize=9)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  return plots.save(fig, out, "learning_curves.png")


def _panel(ax, s: dict, stat: str, when: str, title: str, *, log: bool) -> None:
  for name, f in s.items():
    by_layer = f["layers"][stat]
    names = list(by_layer)
    values = [by_layer[layer][when] for layer in names]
    shown = [np.nan if v is None or (log and v <= 0) else v for v in values]
    ax.plot(range(len(names)), shown, color=_color(name), marker="o", label=name)
    ax.set_xticks(range(len(names)), names, fontsize=7, rotation=30)
  if log:
    ax.set_yscale("log")
  ax.set_title(title, fontsize=9)
  ax.grid(alpha=0.3)


def layer_figure(out: str, s: dict) -> str:
  fig = plots.figure(13.0, 4.2)
  panels = (
    ("grad_norm", "start", "parameter-gradient norm, after epoch 1", True),
    ("grad_norm", "end", "parameter-gradient norm, last epoch", True),
    ("act_std", "end", "activation std (probe batch), last epoch", False),
    ("act_mean", "end", "activation mean (probe batch), last epoch", False),
  )
  for i, (stat, when, title, log) in enumerate(panels):
    ax = fig.add_subplot(1, len(panels), i + 1)
    _panel(ax, s, stat, when, title, log=log)
    ax.set_xlabel("layer (input side first)", fontsize=8)
    if i == 0:
      ax.legend(fontsize=7)
  return plots.save(fig, out, "layers.png")


def draw(out: str, s: dict) -> list[tuple[str, str]]:
  return [
    ("Learning curves per activation", learning_curves(out, s)),
    ("Per-layer gradient norms and activation statistics", layer_figure(out, s)),
  ]
