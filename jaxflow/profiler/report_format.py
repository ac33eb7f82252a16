"""How the profile's numbers read in report.md (and in `jaxflow profile compare`): milliseconds, short
numbers, giga units, timing spreads and markdown tables, one way for every table.
"""

from __future__ import annotations


def ms(seconds) -> str:
  """Seconds as milliseconds, 3 significant digits (2 below 0.01 ms); None is "n/a"."""
  if seconds is None:
    return "n/a"
  value = seconds * 1e3
  return f"{value:.3g}" if value >= 0.01 else f"{value:.2g}"


def num(value, digits: int = 3) -> str:
  """A number in `digits` significant digits, in exponent form when very large or small; None is "n/a"."""
  if value is None:
    return "n/a"
  if isinstance(value, float) and (abs(value) >= 1e5 or (0 < abs(value) < 1e-3)):
    return f"{value:.{digits - 1}e}"
  return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def giga(value) -> str:
  """A count (FLOP/s, bytes/s) in units of 1e9, 3 significant digits; None is "n/a"."""
  return "n/a" if value is None else f"{value / 1e9:.3g}"


def timing_cell(t: dict) -> str:
  """A timing as "median [p10, p90]" in ms."""
  return f"{ms(t['median_s'])} [{ms(t['p10_s'])}, {ms(t['p90_s'])}]"


def table(headers: list[str], rows: list[list]) -> str:
  """A markdown table (header, separator, one line per row), ending in a newline."""
  lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
  lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
  return "\n".join(lines) + "\n"
