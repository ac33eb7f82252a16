"""agreement.json and agreement.md: what `jaxflow agree` writes for two annotators' COCO files.

The JSON holds everything `agreement.compare_files` returns (every image, every assigned pair with both
annotation ids, for a program to pick up); the Markdown is for a person: the overall numbers, one row per
category, and the images that disagree most first (a long file's 10,000 agreeing images are not listed
one by one; `MAX_IMAGE_ROWS` bounds the table, the JSON has them all).
"""

from __future__ import annotations

import os

from jaxflow.workdir.files import write_json, write_text

MAX_IMAGE_ROWS = 50
HEADER = ["boxes A", "boxes B", "matched", "below threshold", "unmatched A", "unmatched B"]
HEADER += ["mean IoU (matched)", "matched share A", "matched share B", "agreement (F1)"]


def _fmt(value, digits: int = 3) -> str:
  return "-" if value is None else f"{value:.{digits}f}"


def _cells(s: dict) -> list[str]:
  counts = [str(s[k]) for k in ("n_a", "n_b", "n_matched", "n_below_threshold", "unmatched_a", "unmatched_b")]
  return counts + [_fmt(s[k]) for k in ("mean_iou", "matched_share_a", "matched_share_b", "agreement")]


def _table(first: str, rows: list[tuple[str, dict]]) -> list[str]:
  lines = ["| " + " | ".join([first, *HEADER]) + " |", "|" + "---|" * (len(HEADER) + 1)]
  return lines + ["| " + " | ".join([name, *_cells(s)]) + " |" for name, s in rows]


def markdown(result: dict) -> str:
  """The report for people: overall, per category, then the least agreeing images."""
  o = result["overall"]
  lines = ["# Annotator agreement", ""]
  lines += [f"- A: `{result['a']}`", f"- B: `{result['b']}`"]
  lines += [f"- IoU threshold: {result['iou_threshold']:g} (a Hungarian pair at or above it is matched)"]
  lines += [f"- images: {result['n_images']}"]
  for side in ("a", "b"):
    only = result[f"images_only_in_{side}"]
    if only:
      listed = ", ".join(map(str, only[:10])) + (" ..." if len(only) > 10 else "")
      lines.append(f"- images only in {side.upper()}: {len(only)} (ids {listed})")
  lines += [f"- warning: {w}" for w in result["warnings"]]
  lines += ["", "## Overall", ""]
  lines += [
    f"{o['n_matched']} matched pairs; mean IoU of the matched pairs {_fmt(o['mean_iou'])}; "
    f"{_fmt(o['matched_share_a'])} of A's boxes and {_fmt(o['matched_share_b'])} of B's are matched "
    f"(agreement F1 {_fmt(o['agreement'])}); {o['unmatched_a']} of A's and {o['unmatched_b']} of B's boxes unmatched, "
    f"{o['n_below_threshold']} pairs overlap but below the threshold.",
    "",
    *_table("", [("all", o)]),
    "",
    "## Per category",
    "",
    *_table("category", sorted(result["per_category"].items())),
    "",
    "## Per image",
    "",
  ]
  images = sorted(result["per_image"], key=lambda r: (r["agreement"], r["image_id"]))
  shown = images[:MAX_IMAGE_ROWS]
  if len(images) > len(shown):
    lines += [f"The {len(shown)} least agreeing of {len(images)} images (agreement.json lists all).", ""]
  lines += _table("image", [(f"{r['image_id']} {r['file_name']}".strip(), r) for r in shown])
  return "\n".join(lines) + "\n"


def write_agreement(out: str, result: dict) -> dict[str, str]:
  """out/agreement.json and out/agreement.md, each written atomically; returns both paths."""
  return {
    "json": write_json(os.path.join(out, "agreement.json"), result, indent=1),
    "md": write_text(os.path.join(out, "agreement.md"), markdown(result)),
  }
