"""The one way jaxflow makes a matplotlib figure: on its own Agg canvas, so drawing and saving a PNG need
no pyplot, no process-wide backend and no display (reports, audits, profiles and explain pages alike)."""

from __future__ import annotations


def new_figure(width: float, height: float, *, dpi: int = 100, layout: str | None = None):
  """A `matplotlib.figure.Figure` of `width` x `height` inches with an Agg canvas attached."""
  # matplotlib costs ~0.3 s to import: only commands that draw a picture pay it.
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure

  fig = Figure(figsize=(width, height), dpi=dpi, layout=layout)
  FigureCanvasAgg(fig)
  return fig
