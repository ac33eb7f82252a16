"""`jaxflow VERB --config=FILE [--config.a.b=v ...] --workdir=DIR`: flags -> library call, nothing else.

Flags are parsed by absl with ml_collections' config_flags (the flax-examples convention), into a fresh
FlagValues per call: no module-level flag state. Exit status: 0 done, 2 bad input (a one-line message
naming the field and what is allowed; nothing written), 1 a run that failed (message says why; its last
good checkpoint is kept).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence

from absl import flags
from absl import logging as absl_logging

from jaxflow.cli.annotation_verbs import ANNOTATION_VERBS
from jaxflow.cli.deploy_verbs import DEPLOY_VERBS, PROFILE_MODEL
from jaxflow.cli.info_verbs import compare_help, config_main, flag_lines, list_main, version_text
from jaxflow.cli.seeds_compare import seeds_compare
from jaxflow.cli.verbs import VERBS, define_common, define_explain, profile_compare, run_explain
from jaxflow.config import ConfigError, one_line, parse_config_flags

USAGE = """usage: jaxflow VERB --config=FILE [--config.FIELD=VALUE ...] --workdir=DIR [--quiet]

verbs:
  train    train and evaluate a model from a config; rerun the same command to resume
  audit    audit the config's dataset: balance, duplicates and leakage, label conflicts, shift, metadata bias
  seeds    train the config with many seeds: variance by source, confidence intervals, determinism
           (`jaxflow seeds compare A B` compares two such studies)
  profile  profile the config's model on every device: fused vs unfused, precisions, roofline, training
           (`jaxflow profile compare A B` sets two reports side by side; `--model=DIR`: an exported model,
           which hardware and precision to serve it on)
  explain  pictures of a trained run (--workdir only): kernels, activation maps, saliency, layer statistics
  list     the names a config accepts: models, optimizers, schedules, losses, activations, initializers, ...
  config   print a config's resolved fields (--config=FILE [--config.FIELD=VALUE ...]) with what each means
  tune     hyperparameter search (--space=FILE): grid, random, Sobol/Halton, Bayesian optimization with a GP
  export   a trained run (--workdir, --out) as a jax.export program + model card; a seeds study as an ensemble
  predict  predict with an exported model (--model): image files, folders, CSV rows, NPZ arrays
  serve    serve an exported model (--model) over HTTP, batching concurrent requests
  agree    two annotators' COCO box files (--a, --b, --out): IoU agreement with Hungarian matching, per image

Run `jaxflow VERB --help` for a verb's flags; `jaxflow --version` for the version."""


def main(argv: Sequence[str] | None = None) -> int:
  argv = list(sys.argv if argv is None else argv)
  if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
    print(USAGE)
    return 0
  if argv[1] in ("--version", "version"):
    print(version_text())
    return 0
  verb, args = argv[1], [_underscored(a) for a in argv[2:]]
  info = {"list": list_main, "config": config_main}
  file_verbs = {**DEPLOY_VERBS, **ANNOTATION_VERBS}  # verbs that read files (a run, a model, annotations)
  if verb not in VERBS and verb not in file_verbs and verb not in info:
    allowed = ", ".join([*VERBS, *file_verbs, *info])
    print(f"jaxflow: error: unknown verb {verb!r}; allowed: {allowed}", file=sys.stderr)
    return 2
  if verb in info:
    try:
      return info[verb](args)
    except ConfigError as e:
      print(f"jaxflow {verb}: error: {one_line(str(e))}", file=sys.stderr)
      return 2
  prog = f"jaxflow {verb}"
  # The process is ours: keep absl's INFO/WARNING chatter (tfds, orbax) out of the user's terminal.
  absl_logging.set_verbosity(absl_logging.ERROR)
  compare = {"seeds": seeds_compare, "profile": profile_compare}
  if verb in compare and args and args[0] == "compare":
    if compare_help(verb, args[1:]):
      return 0
    try:
      return compare[verb](args[1:])
    except ConfigError as e:
      print(f"jaxflow {verb} compare: error: {one_line(str(e))}", file=sys.stderr)
      return 2
  if verb == "explain":  # reads a trained run's workdir: no config flags
    return _explain_main(args)
  if verb in file_verbs:  # a run, an exported model or annotation files, not a config
    return _deploy_main(verb, args, file_verbs[verb])
  if verb == "profile" and any(a.startswith("--model") for a in args):
    return _deploy_main(verb, args, PROFILE_MODEL)
  fv = flags.FlagValues()
  define_common(fv, [prog, *args], verb)
  help_text, run, define = VERBS[verb]
  if define is not None:
    define(fv)
  if "--help" in args or "-h" in args:
    print(f"usage: jaxflow {verb} --config=FILE [--config.FIELD=VALUE ...] --workdir=DIR\n\n{help_text}\n")
    print("\n".join(flag_lines(fv)))
    print(
      "  --config.FIELD=VALUE: override one config field, e.g. --config.optim.lr=3e-3 --config.model.widths=(64,64)"
    )
    return 0
  try:
    unparsed = parse_config_flags(fv, [prog, *args])
    if len(unparsed) > 1:
      raise ConfigError(f"unexpected arguments {unparsed[1:]}; flags look like --config.optim.lr=0.01")
    if not fv.workdir:
      raise ConfigError("--workdir is required, e.g. --workdir=runs/my_run")
    return _stoppable(prog, run, fv)
  except ConfigError as e:
    print(f"{prog}: error: {one_line(str(e))}", file=sys.stderr)
    return 2


def _explain_main(args: Sequence[str]) -> int:
  """`jaxflow explain --workdir=RUN [--examples=N] [--out=DIR] [--tb]`: the run's own config.json says
  what model and data it was, so no --config is taken."""
  fv = flags.FlagValues()
  flags.DEFINE_string("workdir", None, "a trained run's workdir (its config.json and checkpoints)", flag_values=fv)
  flags.DEFINE_boolean("quiet", False, "no progress output", flag_values=fv)
  define_explain(fv)
  if "--help" in args or "-h" in args:
    print(f"usage: jaxflow explain --workdir=RUN [--examples=N] [--out=DIR] [--tb]\n\n{VERBS['explain'][0]}\n")
    print("\n".join(flag_lines(fv, ("workdir", "examples", "out", "tb"))))
    return 0
  try:
    try:
      unparsed = fv(["jaxflow explain", *args])
    except flags.Error as e:
      raise ConfigError(one_line(str(e))) from None
    if len(unparsed) > 1:
      raise ConfigError(f"unexpected arguments {unparsed[1:]}; flags look like --examples=16")
    if not fv.workdir:
      raise ConfigError("--workdir is required: the workdir of a trained run, e.g. --workdir=runs/digits_cnn")
    return run_explain(fv)
  except ConfigError as e:
    print(f"jaxflow explain: error: {one_line(str(e))}", file=sys.stderr)
    return 2


def _deploy_main(verb: str, args: Sequence[str], spec: tuple) -> int:
  usage, help_text, define, run, positional = spec
  fv = flags.FlagValues()
  define(fv)
  if "--help" in args or "-h" in args:
    print(f"usage: {usage}\n\n{help_text}\n")
    print("\n".join(flag_lines(fv)))
    return 0
  try:
    try:
      unparsed = fv([f"jaxflow {verb}", *args])
    except flags.Error as e:
      raise ConfigError(one_line(str(e))) from None
    if len(unparsed) > 1 and not positional:
      raise ConfigError(f"unexpected arguments {unparsed[1:]}; usage: {usage}")
    if positional and len(unparsed) < 2:
      raise ConfigError(f"no inputs given; usage: {usage}")
    return _stoppable(f"jaxflow {verb}", lambda fv: run(fv, list(unparsed[1:])), fv)
  except ConfigError as e:
    print(f"jaxflow {verb}: error: {one_line(str(e))}", file=sys.stderr)
    return 2


class Terminated(Exception):
  """SIGTERM outside a training loop (which saves and stops on its own): the command ends at once."""


def _terminate(signum, frame) -> None:
  raise Terminated


def _stoppable(prog: str, run, fv) -> int:
  """`run(fv)`, ending in one line and 128 + the signal when SIGINT or SIGTERM stops it: a training loop
  saves a checkpoint first and says so (its exception carries `exit_status`); elsewhere nothing was in
  progress that a rerun would not redo."""
  previous = signal.signal(signal.SIGTERM, _terminate)
  try:
    return run(fv)
  except (KeyboardInterrupt, Terminated) as e:
    name = "SIGINT" if isinstance(e, KeyboardInterrupt) else "SIGTERM"
    print(f"{prog}: stopped by {name}; rerun the same command to continue", file=sys.stderr)
    return 130 if name == "SIGINT" else 143
  except Exception as e:
    if getattr(e, "exit_status", None) is None:
      raise
    print(f"{prog}: {one_line(str(e))}", file=sys.stderr)
    return e.exit_status
  finally:
    signal.signal(signal.SIGTERM, previous)


def _underscored(arg: str) -> str:
  """`--check-determinism` -> `--check_determinism` (absl names flags with underscores); config
  overrides and values are left alone."""
  if not arg.startswith("--") or arg.startswith("--config"):
    return arg
  name, sep, value = arg[2:].partition("=")
  return "--" + name.replace("-", "_") + sep + value


def console_main() -> None:
  sys.exit(main())
