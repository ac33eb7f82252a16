"""The study's plots: accuracy by precision, latency by batch size and precision, fusion, streams, memory."""

from __future__ import annotations

from matplotlib import ticker

from experiments.common import plots, stats
from experiments.post_training import measure

PRECISIONS = ("f32", "bf16", "int8")
COLORS = {"f32": "tab:blue", "bf16": "tab:orange", "int8": "tab:green"}
MARKERS = {"f32": "o", "bf16": "s", "int8": "^"}


def _log(ax, *axes: str) -> None:
  """A log axis with plain tick labels ('1000', not mathtext '10^3': cheaper to draw, as readable)."""
  plain = ticker.FuncFormatter(lambda v, _: f"{v:g}")
  for name in axes:
    getattr(ax, f"set_{name}scale")("log")
    getattr(ax, f"{name}axis").set_major_formatter(plain)
    getattr(ax, f"{name}axis").set_minor_formatter(ticker.NullFormatter())


def _accuracy(out: str, accuracy: dict) -> str:
  """Per family: test accuracy per precision, mean and 95% CI over seeds, seeds as dots."""
  fig = plots.figure(3.2 * len(accuracy) + 1, 3.8)
  for i, (family, by_p) in enumerate(accuracy.items()):
    ax = fig.add_subplot(1, len(accuracy), i + 1)
    for j, p in enumerate(PRECISIONS):
      values = [r["accuracy"] for r in by_p[p] if r]
      plots.error_bars(ax, [j], [stats.mean_ci(values)], color=COLORS[p])
      ax.scatter([j + 0.12] * len(values), values, s=10, color=COLORS[p], alpha=0.5)
    ax.set_xticks(range(len(PRECISIONS)), PRECISIONS)
    ax.set_title(f"{family}: test accuracy per precision")
    ax.set_ylabel("test accuracy (mean, 95% CI; dots: seeds)")
  return plots.save(fig, out, "accuracy_by_precision.png")


def _latency(out: str, speed: dict) -> str:
  """Per family: microseconds per example against batch size, one line per precision (median, p10-p90 band)."""
  fig = plots.figure(3.6 * len(speed) + 1, 4.0)
  for i, (family, s) in enumerate(speed.items()):
    ax = fig.add_subplot(1, len(speed), i + 1)
    sizes = sorted(s["latency"])
    for p in PRECISIONS:
      per = [measure.summary([1e6 * t / b for t in s["latency"][b][p]]) for b in sizes]
      ax.plot(sizes, [x["median"] for x in per], marker="o", ms=4, color=COLORS[p], label=p)
      ax.fill_between(sizes, [x["p10"] for x in per], [x["p90"] for x in per], color=COLORS[p], alpha=0.2)
    _log(ax, "x", "y")
    ax.set_xlabel("batch size")
    ax.set_ylabel("microseconds per example")
    ax.set_title(f"{family}: exported program, by precision")
    ax.legend()
  return plots.save(fig, out, "latency_by_batch.png")


def _bars(ax, groups: dict, keys: tuple, ylabel: str, title: str) -> None:
  """Grouped bars: one group per batch size, one bar per key (median, p10-p90 whisker)."""
  width = 0.8 / len(keys)
  for j, key in enumerate(keys):
    xs, med, low, high = [], [], [], []
    for i, (_, values) in enumerate(groups.items()):
      s = measure.summary(values[key])
      xs.append(i + j * width)
      med.append(s["median"])
      low.append(s["median"] - s["p10"])
      high.append(s["p90"] - s["median"])
    ax.bar(xs, med, width, yerr=[low, high], capsize=2, label=key)
  ax.set_xticks([i + 0.4 - width / 2 for i in range(len(groups))], [f"batch {b}" for b in groups])
  ax.set_ylabel(ylabel)
  ax.set_title(title)
  ax.legend(fontsize=7)


def _fusion_and_streams(out: str, speed: dict) -> tuple[str, str]:
  fig = plots.figure(3.6 * len(speed) + 1, 4.0)
  for i, (family, s) in enumerate(speed.items()):
    ax = fig.add_subplot(1, len(speed), i + 1)
    groups = {b: {k: [1e3 * t for t in v] for k, v in f["seconds"].items()} for b, f in s["fusion"].items()}
    _bars(ax, groups, ("fused", "no fusion", "disable_jit"), "ms per call (median, p10-p90)", f"{family}: fusion")
    _log(ax, "y")
  fusion = plots.save(fig, out, "fusion.png")
  fig = plots.figure(3.6 * len(speed) + 1, 4.0)
  for i, (family, s) in enumerate(speed.items()):
    ax = fig.add_subplot(1, len(speed), i + 1)
    groups = {b: st["examples_per_second"] for b, st in s["streams"].items()}
    keys = ("1 caller", "2 callers (threads)", "dispatched back to back")
    _bars(ax, groups, keys, "examples per second (median, p10-p90)", f"{family}: streams")
    _log(ax, "y")
  return fusion, plots.save(fig, out, "streams.png")


def _memory(out: str, speed: dict) -> str:
  """Total buffer bytes (argument + output + temporaries) of each compiled batch size, per precision."""
  fig = plots.figure(3.6 * len(speed) + 1, 4.0)
  for i, (family, s) in enumerate(speed.items()):
    ax = fig.add_subplot(1, len(speed), i + 1)
    for p, by_size in s["memory"].items():
      sizes = sorted(by_size)
      totals = [by_size[b]["total"] / 1024 for b in sizes]
      ax.plot(sizes, totals, marker=MARKERS[p], ms=5, color=COLORS[p], label=f"{p} total", alpha=0.8)
      temp = [(b, by_size[b]["temp"] / 1024) for b in sizes if by_size[b]["temp"] > 0]  # 0 B: not on a log axis
      ax.plot(
        [t[0] for t in temp],
        [t[1] for t in temp],
        ls="--",
        marker=MARKERS[p],
        ms=3,
        color=COLORS[p],
        label=f"{p} temporaries",
        alpha=0.8,
      )
    _log(ax, "x", "y")
    ax.set_xlabel("batch size (one compile each)")
    ax.set_ylabel("KiB (memory_analysis)")
    ax.set_title(f"{family}: buffers by batch size")
    ax.legend(fontsize=7)
  return plots.save(fig, out, "memory_by_batch.png")


def draw(out: str, accuracy: dict, speed: dict) -> list[tuple[str, str]]:
  fusion, streams = _fusion_and_streams(out, speed)
  return [
    ("Test accuracy per precision (mean, 95% CI over seeds)", _accuracy(out, accuracy)),
    ("Microseconds per example by batch size and precision", _latency(out, speed)),
    ("Fused vs fusion off vs disable_jit on the loaded model", fusion),
    ("One caller vs two concurrent callers vs asynchronous dispatch", streams),
    ("Buffer memory by batch size (memory_analysis)", _memory(out, speed)),
  ]
