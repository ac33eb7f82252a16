"""Where explain's pictures go besides the PNG files: an HTML page beside them, and TensorBoard.

The page links the PNGs by relative path, so the output folder can be moved or served as it is.
TensorBoard gets the same pictures as image summaries (`explain/<name>`, at the explained checkpoint's
step) in an event file of its own in the run's tb/ folder, written with tensorboardX's EventsWriter as
jaxflow/training/writers.py writes the run's events: the run's own event files are never opened.
"""

from __future__ import annotations

import html
import os
import time

import numpy as np

from jaxflow.workdir import write_text


def write_tensorboard(tb_dir: str, step: int, images: dict[str, np.ndarray]) -> dict:
  """Writes every picture as an image summary `explain/<name>` at `step`; returns {file, tags}."""
  # tensorboardX (protobuf) loads only when explain writes into TensorBoard (`--tb`).
  from tensorboardX import summary as tb_summary
  from tensorboardX.event_file_writer import EventsWriter  # deferred: as above
  from tensorboardX.proto.event_pb2 import Event  # deferred: as above
  from tensorboardX.proto.summary_pb2 import Summary  # deferred: as above

  os.makedirs(tb_dir, exist_ok=True)
  writer = EventsWriter(os.path.join(tb_dir, "events"), filename_suffix=f".explain.{time.time_ns()}")
  tags = []
  try:
    for name, image in images.items():
      tag = f"explain/{name}"
      summary = tb_summary.image(tag, np.asarray(image, np.uint8), dataformats="HWC")
      writer.write_event(Event(wall_time=time.time(), step=int(step), summary=Summary(value=list(summary.value))))
      tags.append(tag)
  finally:
    writer.close()
  return {"file": getattr(writer, "_file_name", None), "tags": tags}


def _fmt(value, digits: int = 3) -> str:
  """A table cell: floats in `digits` significant digits, None as "n/a", the rest escaped."""
  if value is None:
    return "n/a"
  if isinstance(value, float):
    return f"{value:.{digits}g}"
  return html.escape(str(value))


STYLE = (
  "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
  "img{max-width:100%;border:1px solid #ddd}table{border-collapse:collapse;margin:.5em 0}"
  "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}"
  ".warn{color:#b00}.ok{color:#070}</style></head><body>"
)


def write_page(path: str, report: dict, entries: list[dict]) -> None:
  """index.html: the run, the sanity-check numbers as tables, then every picture with what it shows."""
  parts = _head(report)
  parts += _randomization(report["sanity"]["model_randomization"])
  parts += _completeness(report["sanity"]["ig_completeness"])
  parts += _layers(report["layers"])
  parts.append("<h2>Pictures</h2>")
  for entry in entries:
    parts.append(
      f"<h3>{html.escape(entry['title'])}</h3><p>{html.escape(entry['text'])}</p>"
      f"<img src='{html.escape(entry['file'])}' alt='{html.escape(entry['title'])}'>"
    )
  parts.append("<p>Numbers: <a href='report.json'>report.json</a>.</p></body></html>")
  write_text(path, "\n".join(parts))


def _head(report: dict) -> list[str]:
  """The page's head and what was explained: model, checkpoint, examples, target."""
  ckpt = report["checkpoint"]
  return [
    "<!doctype html><html><head><meta charset='utf-8'><title>jaxflow explain</title>",
    STYLE,
    f"<h1>jaxflow explain: {html.escape(report['workdir'])}</h1>",
    f"<p>Model <b>{html.escape(report['model'])}</b> "
    f"({html.escape(report['family'])} input, {html.escape(report['problem'])}); "
    f"{ckpt['which']} checkpoint at step {ckpt['step']}; {len(report['examples'])} evaluation examples explained, "
    "target: the predicted class (a single output: that output).</p>",
    "<h2>Sanity checks</h2>",
  ]


def _randomization(randomization: dict) -> list[str]:
  """The model randomization check: rank correlations per method, and what the support means."""
  parts = [
    "<h3>Model randomization</h3><p>Spearman rank correlation of |saliency| between the trained model and a "
    "re-initialized one, per example (Adebayo et al. 2018). Near 1: the map does not depend on the weights.</p>",
    "<table><tr><th>method</th><th>mean</th><th>median</th><th>min</th><th>max</th><th>mean on the support</th></tr>",
  ]
  for method, stats in randomization.items():
    cells = "".join(f"<td>{_fmt(stats.get(k))}</td>" for k in ("mean", "median", "min", "max", "support_mean"))
    parts.append(f"<tr><td>{html.escape(method)}</td>{cells}</tr>")
  parts.append(
    "</table><p>Support: the input entries that differ from the zero baseline "
    "(graphs: the explained output's receptive field). "
    "Gradient x input and integrated gradients are 0 off it in both models, "
    "and those shared zeros are tied ranks that raise the correlation on their own.</p>"
  )
  return parts


def _completeness(ig: dict) -> list[str]:
  """Integrated gradients' completeness: the shown maps' verdict, then the error by number of steps."""
  shown = ig["shown"]
  verdict = "ok" if shown["passed"] else "warn"
  parts = [
    "<h3>Integrated gradients: completeness</h3><p>|sum of attributions - (f(x) - f(baseline))|, zero baseline, "
    f"trapezoid rule. The shown maps use {shown['steps']} steps: "
    f"max error <span class='{verdict}'>{_fmt(shown['max_abs_error'])}</span> "
    f"(tolerance {_fmt(shown['tolerance'])}).</p>"
    "<table><tr><th>steps</th><th>max abs error</th><th>mean abs error</th><th>max relative error</th>"
    "<th>mean |f(x) - f(x')|</th></tr>"
  ]
  for steps, gap in ig["by_steps"].items():
    parts.append(
      f"<tr><td>{steps}</td>"
      + "".join(
        f"<td>{_fmt(gap[k])}</td>" for k in ("max_abs_error", "mean_abs_error", "max_rel_error", "mean_abs_delta")
      )
      + "</tr>"
    )
  parts.append("</table>")
  return parts


def _layers(layers: dict) -> list[str]:
  """The layer statistics check: the vanishing / exploding layers, none, or no statistics logged."""
  parts = ["<h3>Layer statistics</h3>"]
  if not layers["records"]:
    parts.append(
      "<p>The run logged no layer statistics (train with <code>--config.train.layer_stats_every=N</code>).</p>"
    )
    return parts
  flagged = [(kind, f) for kind in ("vanishing", "exploding") for f in layers[kind]]
  if flagged:
    parts.append(
      "<ul>"
      + "".join(
        f"<li class='warn'>{kind}: {html.escape(f['layer'])} {html.escape(f['statistic'])} "
        f"at {len(f['steps'])} logged step(s)</li>"
        for kind, f in flagged
      )
      + "</ul>"
    )
  else:
    parts.append(
      f"<p class='ok'>No layer below {layers['thresholds']['vanishing']:g} "
      f"or above {layers['thresholds']['exploding']:g} ({layers['records']} logged steps).</p>"
    )
  return parts
