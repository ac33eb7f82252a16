"""`jaxflow VERB --config=FILE [--config.a.b=v ...] --workdir=DIR`: flags -> library call, nothing else.

Flags are parsed by absl with ml_collections' config_flags (the flax-examples convention), into a fresh
FlagValues per call: no module-level flag state. Exit status: 0 done, 2 bad input (a one-line message
naming the field and what is allowed; nothing written), 1 a run that failed (message says why; its last
good checkpoint is kept).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from absl import flags
from absl import logging as absl_logging
from ml_collections import config_flags

from jaxflow.config import ConfigError, one_line, parse_config_flags

USAGE = """usage: jaxflow VERB --config=FILE [--config.FIELD=VALUE ...] --workdir=DIR [--quiet]

verbs:
  train    train and evaluate a model from a config; rerun the same command to resume
  audit    audit the config's dataset: balance, duplicates and leakage, label conflicts, shift, metadata bias
  seeds    train the config with many seeds: variance by source, confidence intervals, determinism
           (`jaxflow seeds compare A B` compares two such studies)
  profile  profile the config's model on every device: fused vs unfused, precisions, roofline, training
           (`jaxflow profile compare A B` sets two reports side by side)
  explain  pictures of a trained run (--workdir only): kernels, activation maps, saliency, layer statistics
  tune     hyperparameter search (--space=FILE): grid, random, Sobol/Halton, Bayesian optimization with a GP

Run `jaxflow VERB --help` for a verb's flags."""


def _define_common(flag_values: flags.FlagValues, argv: Sequence[str]) -> None:
  config_flags.DEFINE_config_file(
    "config",
    None,
    "experiment config file, e.g. configs/digits_cnn.py (FILE:variant passes a variant)",
    flag_values=flag_values,
    lock_config=True,
    sys_argv=list(argv),
  )
  flags.DEFINE_string(
    "workdir", None, "directory for config.json, metrics, checkpoints, TensorBoard logs", flag_values=flag_values
  )
  flags.DEFINE_boolean("quiet", False, "no progress bar", flag_values=flag_values)


def _run_train(fv: flags.FlagValues) -> int:
  from jaxflow.run.train import NonFiniteLossError, train_and_evaluate

  try:
    summary = train_and_evaluate(fv.config, fv.workdir, quiet=fv.quiet)
  except NonFiniteLossError as e:
    print(f"jaxflow train: error: {e}", file=sys.stderr)
    return 1
  final = summary["final"]["eval"]
  shown = {k: round(v, 4) for k, v in final.items()}
  print(
    json.dumps(
      {
        "workdir": fv.workdir,
        "eval": shown,
        "steps": summary["steps"],
        "wall_seconds": round(summary["wall_seconds"], 2),
      }
    )
  )
  return 0


def _run_audit(fv: flags.FlagValues) -> int:
  from jaxflow.auditing import run_audit

  report = run_audit(fv.config, fv.workdir)
  print(json.dumps({"workdir": fv.workdir, "findings": report["summary"]["findings"]}))
  return 0


def _define_seeds(fv: flags.FlagValues) -> None:
  flags.DEFINE_integer("seeds", 16, "seeds per sweep", flag_values=fv)
  flags.DEFINE_string(
    "vary",
    "all",
    "PRNG streams that change across seeds: init,data,dropout,augment,noise,sampler | all | none",
    flag_values=fv,
  )
  flags.DEFINE_string(
    "mode", "auto", "auto (time the candidates, take the fastest) | vmap | sequential | devices", flag_values=fv
  )
  flags.DEFINE_string(
    "study", None, "sources: one sweep per PRNG source plus all and none, and the variance by source", flag_values=fv
  )
  flags.DEFINE_boolean(
    "check_determinism",
    False,
    "rerun a seed, compare 1 with N devices (and deterministic GPU ops on a GPU)",
    flag_values=fv,
  )


def _run_seeds(fv: flags.FlagValues) -> int:
  from jaxflow.seeds.study import run_seeds

  report = run_seeds(
    fv.config,
    fv.workdir,
    seeds=fv.seeds,
    vary=fv.vary,
    mode=fv.mode,
    study=fv.study,
    check_determinism=fv.check_determinism,
    quiet=fv.quiet,
  )
  shown = {
    s["name"]: {k: round(s["final"][k], 4) for k in ("mean", "std")} if s["final"] else None for s in report["sweeps"]
  }
  print(
    json.dumps({"workdir": fv.workdir, "mode": report["mode"]["mode"], "metric": report["metric"], "sweeps": shown})
  )
  return 0


def _seeds_compare(paths: Sequence[str]) -> int:
  from jaxflow.seeds.compare import compare_studies

  if len(paths) != 2:
    raise ConfigError(
      f"jaxflow seeds compare takes two study workdirs, got {len(paths)}: jaxflow seeds compare runs/a runs/b"
    )
  result = compare_studies(*paths)
  print(result["verdict"])
  print(
    json.dumps(
      {k: result[k] for k in ("difference", "difference_ci95", "welch_t_p", "mann_whitney_p", "a_beats_b", "b_beats_a")}
    )
  )
  return 0


def _define_profile(fv: flags.FlagValues) -> None:
  flags.DEFINE_string("batch_sizes", "1,32,256", "inference batch sizes to profile, comma-separated", flag_values=fv)
  flags.DEFINE_string(
    "precisions", "f32,bf16", "precisions to compare: f32, bf16, int8 (comma-separated)", flag_values=fv
  )
  flags.DEFINE_boolean(
    "trace",
    False,
    "write a jax.profiler trace of one profiled step (TensorBoard profile plugin, XProf, Perfetto)",
    flag_values=fv,
  )


def _run_profile(fv: flags.FlagValues) -> int:
  from jaxflow.profiler.run import run_profile

  report = run_profile(
    fv.config, fv.workdir, batch_sizes=fv.batch_sizes, precisions=fv.precisions, trace=fv.trace, quiet=fv.quiet
  )
  print(json.dumps({"workdir": fv.workdir, "devices": [d["name"] for d in report.get("devices", [])]}))
  return 0


def _profile_compare(paths: Sequence[str]) -> int:
  from jaxflow.profiler.compare import compare_reports

  if len(paths) != 2:
    raise ConfigError(
      f"jaxflow profile compare takes two profile workdirs, got {len(paths)}: jaxflow profile compare runs/prof_cpu runs/prof_gpu"
    )
  print(compare_reports(*paths))
  return 0


def _define_explain(fv: flags.FlagValues) -> None:
  flags.DEFINE_integer("examples", 16, "examples to explain (saliency, activation maps)", flag_values=fv)
  flags.DEFINE_string("out", None, "output folder (default: WORKDIR/explain)", flag_values=fv)
  flags.DEFINE_boolean(
    "tb", False, "also write the pictures to the run's TensorBoard as image summaries", flag_values=fv
  )


def _run_explain(fv: flags.FlagValues) -> int:
  from jaxflow.inspect.explain import run_explain

  result = run_explain(fv.workdir, examples=fv.examples, out=fv.out, tensorboard=fv.tb)
  print(json.dumps({"workdir": fv.workdir, "out": result["out"], "page": result["page"]}))
  return 0


def _define_tune(fv: flags.FlagValues) -> None:
  flags.DEFINE_string(
    "space",
    None,
    "search-space file with get_space() (FILE[:variant]), e.g. configs/spaces/digits_mlp.py",
    flag_values=fv,
  )
  flags.DEFINE_string("method", "bo", "grid | random | sobol | halton | bo (Bayesian optimization, GP)", flag_values=fv)
  flags.DEFINE_integer("trials", 30, "trials in the study (a rerun continues up to this many)", flag_values=fv)
  flags.DEFINE_integer(
    "batch", 1, "proposals per round (trials whose shapes agree train as one vmapped program)", flag_values=fv
  )
  flags.DEFINE_string(
    "early_stop",
    "none",
    "none | median (median rule on a probe run) | asha (successive halving over rungs)",
    flag_values=fv,
  )
  flags.DEFINE_string("acquisition", "ei", "bo: ei (expected improvement) | ucb", flag_values=fv)
  flags.DEFINE_string(
    "objective", "final", "final (the last epoch's train.monitor) | best (its best epoch's)", flag_values=fv
  )
  flags.DEFINE_integer(
    "init_trials", None, "bo: Sobol trials before the GP (default: 2 per parameter, 5 to 10)", flag_values=fv
  )
  flags.DEFINE_integer(
    "study_seed", 0, "seed of the search itself (the trials keep the config's seeds)", flag_values=fv
  )


def _run_tune(fv: flags.FlagValues) -> int:
  from jaxflow.tuning.study import run_tune

  report = run_tune(
    fv.config,
    fv.workdir,
    space=fv.space,
    method=fv.method,
    trials=fv.trials,
    batch=fv.batch,
    early_stop=fv.early_stop,
    acquisition=fv.acquisition,
    objective=fv.objective,
    init_trials=fv.init_trials,
    seed=fv.study_seed,
    config_file=config_flags.get_config_filename(fv["config"]),
    quiet=fv.quiet,
  )
  best = report["best"]
  shown = {"trial": best["index"], "value": round(best["value"], 4), "params": best["params"]} if best else None
  print(
    json.dumps(
      {
        "workdir": fv.workdir,
        "method": fv.method,
        "metric": report["metric"],
        "counts": report["counts"],
        "best": shown,
      }
    )
  )
  return 0


VERBS: dict[str, tuple] = {
  "train": ("train and evaluate a model from a config", _run_train, None),
  "audit": ("audit the config's dataset; writes report.md, report.json and plots/ in the workdir", _run_audit, None),
  "profile": (
    "profile the config's model on every device: fused vs unfused inference, precisions, roofline, training",
    _run_profile,
    _define_profile,
  ),
  "explain": (
    "pictures of a trained run: kernels, activation maps, saliency (+ sanity checks), layer statistics",
    _run_explain,
    _define_explain,
  ),
  "seeds": (
    "train many seeds of a config (one program when it pays); writes report.md, report.json, plots/ and a run workdir per seed",
    _run_seeds,
    _define_seeds,
  ),
  "tune": (
    "hyperparameter search over --space; writes report.md, report.json, plots/, best_config.py and a run workdir per trial",
    _run_tune,
    _define_tune,
  ),
}


def main(argv: Sequence[str] | None = None) -> int:
  argv = list(sys.argv if argv is None else argv)
  if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
    print(USAGE)
    return 0
  verb, args = argv[1], [_underscored(a) for a in argv[2:]]
  if verb not in VERBS:
    print(f"jaxflow: error: unknown verb {verb!r}; allowed: {', '.join(VERBS)}", file=sys.stderr)
    return 2
  prog = f"jaxflow {verb}"
  # The process is ours: keep absl's INFO/WARNING chatter (tfds, orbax) out of the user's terminal.
  absl_logging.set_verbosity(absl_logging.ERROR)
  compare = {"seeds": _seeds_compare, "profile": _profile_compare}
  if verb in compare and args and args[0] == "compare":
    try:
      return compare[verb](args[1:])
    except ConfigError as e:
      print(f"jaxflow {verb} compare: error: {one_line(str(e))}", file=sys.stderr)
      return 2
  if verb == "explain":  # reads a trained run's workdir: no config flags
    return _explain_main(args)
  fv = flags.FlagValues()
  _define_common(fv, [prog, *args])
  help_text, run, define = VERBS[verb]
  if define is not None:
    define(fv)
  if "--help" in args or "-h" in args:
    print(f"usage: jaxflow {verb} --config=FILE [--config.FIELD=VALUE ...] --workdir=DIR\n\n{help_text}\n")
    for name in [n for n in fv if n not in ("help", "helpshort", "helpfull", "helpxml", "flagfile", "undefok")]:
      if not name.startswith("config."):
        print(f"  --{name}: {fv[name].help}")
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
    return run(fv)
  except ConfigError as e:
    print(f"{prog}: error: {one_line(str(e))}", file=sys.stderr)
    return 2


def _explain_main(args: Sequence[str]) -> int:
  """`jaxflow explain --workdir=RUN [--examples=N] [--out=DIR] [--tb]`: the run's own config.json says
  what model and data it was, so no --config is taken."""
  fv = flags.FlagValues()
  flags.DEFINE_string("workdir", None, "a trained run's workdir (its config.json and checkpoints)", flag_values=fv)
  flags.DEFINE_boolean("quiet", False, "no progress output", flag_values=fv)
  _define_explain(fv)
  if "--help" in args or "-h" in args:
    print(f"usage: jaxflow explain --workdir=RUN [--examples=N] [--out=DIR] [--tb]\n\n{VERBS['explain'][0]}\n")
    for name in ("workdir", "examples", "out", "tb"):
      print(f"  --{name}: {fv[name].help}")
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
    return _run_explain(fv)
  except ConfigError as e:
    print(f"jaxflow explain: error: {one_line(str(e))}", file=sys.stderr)
    return 2


def _underscored(arg: str) -> str:
  """`--check-determinism` -> `--check_determinism` (absl names flags with underscores); config
  overrides and values are left alone."""
  if not arg.startswith("--") or arg.startswith("--config"):
    return arg
  name, sep, value = arg[2:].partition("=")
  return "--" + name.replace("-", "_") + sep + value


def console_main() -> None:
  sys.exit(main())


if __name__ == "__main__":
  console_main()
