"""The verb that reads annotation files instead of a config: `jaxflow agree`, two annotators' COCO boxes compared.

Shaped like the deploy verbs (usage, help, define its flags, run, takes positional arguments) so `main` parses
it the same way; its library modules load when the verb runs (jax for the IoU), each import saying so.
"""

from __future__ import annotations

import json

from absl import flags

from jaxflow.config import ConfigError

USAGE = "jaxflow agree --a=A.json --b=B.json --out=DIR [--iou=0.5]"


def define_agree(fv: flags.FlagValues) -> None:
  flags.DEFINE_string("a", None, "annotator A's boxes: a COCO JSON file (images, annotations, ...)", flag_values=fv)
  flags.DEFINE_string("b", None, "annotator B's boxes on the same images, a COCO JSON file", flag_values=fv)
  flags.DEFINE_string("out", None, "the folder to write agreement.json and agreement.md to", flag_values=fv)
  flags.DEFINE_float("iou", 0.5, "a Hungarian pair of boxes is matched when its IoU is at least this", flag_values=fv)


def run_agree(fv: flags.FlagValues) -> int:
  from jaxflow.annotations.coco import CocoError, read_coco  # deferred, as every verb's library: json and numpy

  missing = [f"--{name}" for name in ("a", "b", "out") if not fv[name].value]
  if missing:
    raise ConfigError(f"{', '.join(missing)} required; usage: {USAGE}")
  if not 0 < fv.iou <= 1:
    raise ConfigError(f"--iou={fv.iou:g} must be in (0, 1]")
  try:  # both files read and checked before jax loads: a refusal is quick
    a, b = read_coco(fv.a), read_coco(fv.b)
  except CocoError as e:
    raise ConfigError(str(e)) from None
  from jaxflow.annotations.agreement import compare  # deferred: loads jax
  from jaxflow.annotations.agreement_report import write_agreement  # deferred with it: writes through numpy

  result = compare(a, b, iou_threshold=fv.iou)
  try:
    paths = write_agreement(fv.out, result)
  except OSError as e:
    raise ConfigError(f"--out={fv.out}: cannot write the report there ({e.strerror})") from None
  o = result["overall"]
  shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in o.items()}
  print(json.dumps({"out": fv.out, "report": paths["md"], "images": result["n_images"], **shown}))
  return 0


# verb -> (usage, help, define its flags, run(fv, positional arguments), takes positional arguments)
ANNOTATION_VERBS: dict[str, tuple] = {
  "agree": (
    USAGE,
    "how well two annotators' boxes agree: Hungarian matching by IoU per image and category, a report per image",
    define_agree,
    lambda fv, _: run_agree(fv),
    False,
  ),
}
