"""Each verb of the CLI: its own flags (`define_*`) and its call into the library (`run_*`).

A verb's library module is imported when the verb runs, not when the CLI starts: jax, flax, orbax and
tfds (1-2 s of imports) load only for a verb that needs them, so `jaxflow --help` and a one-line refusal
of bad input stay fast. Each such import says so on its line.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from absl import flags
from ml_collections import config_flags

from jaxflow.config import ConfigError

# What --workdir and --quiet mean for each config verb.
WORKDIR_HELP = {
  "train": "the run's folder: config.json, metrics, checkpoints, TensorBoard logs, summary.json (rerun to resume)",
  "audit": "where the audit writes report.md, report.json and plots/",
  "profile": "where the profile writes report.md, report.json, plots/ (and a trace with --trace)",
  "seeds": "the study's folder: report.md, report.json, plots/ and one run workdir per seed",
  "tune": "the study's folder: report.md, report.json, plots/, best_config.py and one run workdir per trial",
}
QUIET_HELP = {
  "train": "no progress bar and no per-epoch lines",
  "seeds": "no progress output from the study or its runs",
  "tune": "no progress output from the study or its trials",
}


def define_common(flag_values: flags.FlagValues, argv: Sequence[str], verb: str = "train") -> None:
  config_flags.DEFINE_config_file(
    "config",
    None,
    "experiment config file, e.g. configs/digits_cnn.py (FILE:variant passes a variant)",
    flag_values=flag_values,
    lock_config=True,
    sys_argv=list(argv),
  )
  flags.DEFINE_string("workdir", None, WORKDIR_HELP.get(verb, WORKDIR_HELP["train"]), flag_values=flag_values)
  flags.DEFINE_boolean("quiet", False, QUIET_HELP.get(verb, "no progress output"), flag_values=flag_values)


def run_train(fv: flags.FlagValues) -> int:
  from jaxflow.run.train import NonFiniteLossError, train_and_evaluate  # deferred: loads jax, flax, orbax, tfds

  try:
    summary = train_and_evaluate(fv.config, fv.workdir, quiet=fv.quiet)
  except NonFiniteLossError as e:
    print(f"jaxflow train: error: {e}", file=sys.stderr)
    return 1
  final = summary["final"]["eval"]
  shown = {k: round(v, 4) for k, v in final.items()}
  trend = summary.get("loss_trend", {})
  if trend.get("verdict") in ("diverged", "did not decrease"):
    print(
      f"jaxflow train: warning: the training loss {trend['verdict']} "
      f"(first step {trend['initial']:.4g}, last logged {trend['final']:.4g}, highest {trend['peak']:.4g})",
      file=sys.stderr,
    )
  line = {
    "workdir": fv.workdir,
    "eval": shown,
    "steps": summary["steps"],
    "wall_seconds": round(summary["wall_seconds"], 2),
  }
  print(json.dumps(line | {"loss_trend": trend.get("verdict")}))
  return 0


def run_audit(fv: flags.FlagValues) -> int:
  from jaxflow.auditing import run_audit  # deferred: loads jax and tfds

  report = run_audit(fv.config, fv.workdir)
  print(json.dumps({"workdir": fv.workdir, "findings": report["summary"]["findings"]}))
  return 0


def define_seeds(fv: flags.FlagValues) -> None:
  flags.DEFINE_integer("seeds", 16, "seeds per sweep", flag_values=fv)
  flags.DEFINE_string(
    "vary",
    "all",
    "PRNG streams that change across seeds: init,data,dropout,augment,noise,sampler | all | none; one_bit: every "
    "stream pinned, one bit of one initial weight flipped per seed",
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
  define_executor(fv)


def define_executor(fv: flags.FlagValues) -> None:
  flags.DEFINE_string(
    "executor",
    "local",
    "local (this process) | ray (each run as a task on a Ray cluster; the ray extra)",
    flag_values=fv,
  )
  flags.DEFINE_string(
    "address",
    None,
    "--executor=ray: the Ray head's HOST:PORT (default auto: RAY_ADDRESS or this machine's)",
    flag_values=fv,
  )


def run_seeds(fv: flags.FlagValues) -> int:
  from jaxflow.seeds.study import run_seeds  # deferred: loads jax, flax, orbax, tfds

  report = run_seeds(
    fv.config,
    fv.workdir,
    seeds=fv.seeds,
    vary=fv.vary,
    mode=fv.mode,
    study=fv.study,
    check_determinism=fv.check_determinism,
    quiet=fv.quiet,
    executor=fv.executor,
    address=fv.address,
  )
  shown = {
    s["name"]: {k: round(s["final"][k], 4) for k in ("mean", "std")} if s["final"] else None for s in report["sweeps"]
  }
  print(
    json.dumps({"workdir": fv.workdir, "mode": report["mode"]["mode"], "metric": report["metric"], "sweeps": shown})
  )
  return 0


def define_profile(fv: flags.FlagValues) -> None:
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
  flags.DEFINE_boolean(
    "quick",
    False,
    "a smoke check: one round of few repeats and small peak-measurement sizes (seconds, not minutes; the "
    "figures are rough)",
    flag_values=fv,
  )


def run_profile(fv: flags.FlagValues) -> int:
  from jaxflow.profiler import timing  # deferred: loads jax
  from jaxflow.profiler.run import run_profile  # deferred: loads jax, flax, orbax, tfds

  quick = {"protocol": timing.QUICK, "quick_peaks": True} if fv.quick else {}
  report = run_profile(
    fv.config,
    fv.workdir,
    batch_sizes=fv.batch_sizes,
    precisions=fv.precisions,
    trace=fv.trace,
    quiet=fv.quiet,
    **quick,
  )
  print(json.dumps({"workdir": fv.workdir, "devices": [d["name"] for d in report.get("devices", [])]}))
  return 0


def profile_compare(paths: Sequence[str]) -> int:
  from jaxflow.profiler.compare import compare_reports  # deferred: loads the profiler

  if len(paths) != 2:
    raise ConfigError(
      f"jaxflow profile compare takes two profile workdirs, got {len(paths)}: "
      "jaxflow profile compare runs/prof_cpu runs/prof_gpu"
    )
  print(compare_reports(*paths))
  return 0


def define_explain(fv: flags.FlagValues) -> None:
  flags.DEFINE_integer("examples", 16, "examples to explain (saliency, activation maps)", flag_values=fv)
  flags.DEFINE_string("out", None, "output folder (default: WORKDIR/explain)", flag_values=fv)
  flags.DEFINE_boolean(
    "tb", False, "also write the pictures to the run's TensorBoard as image summaries", flag_values=fv
  )


def run_explain(fv: flags.FlagValues) -> int:
  from jaxflow.inspect.explain import run_explain  # deferred: loads jax, flax, orbax, matplotlib

  result = run_explain(fv.workdir, examples=fv.examples, out=fv.out, tensorboard=fv.tb)
  print(json.dumps({"workdir": fv.workdir, "out": result["out"], "page": result["page"]}))
  return 0


def define_tune(fv: flags.FlagValues) -> None:
  flags.DEFINE_string(
    "space",
    None,
    "search-space file with get_space() (FILE[:variant]), e.g. configs/spaces/digits_mlp.py",
    flag_values=fv,
  )
  flags.DEFINE_string("method", "bo", "grid | random | sobol | halton | bo (Bayesian optimization, GP)", flag_values=fv)
  flags.DEFINE_integer("trials", 30, "trials in the study (a rerun continues up to this many)", flag_values=fv)
  flags.DEFINE_integer(
    "batch",
    None,
    "proposals per round (default 1; with --executor=ray the tasks the cluster runs at once): locally, trials whose "
    "shapes agree train as one vmapped program; on Ray each trial is a task",
    flag_values=fv,
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
  define_executor(fv)


def run_tune(fv: flags.FlagValues) -> int:
  from jaxflow.tuning.study import run_tune  # deferred: loads jax, flax, orbax, tfds

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
    executor=fv.executor,
    address=fv.address,
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


VERBS: dict[str, tuple] = {  # verb -> (help, run, define its own flags)
  "train": ("train and evaluate a model from a config", run_train, None),
  "audit": ("audit the config's dataset; writes report.md, report.json and plots/ in the workdir", run_audit, None),
  "profile": (
    "profile the config's model on every device: fused vs unfused inference, precisions, roofline, training",
    run_profile,
    define_profile,
  ),
  "explain": (
    "pictures of a trained run: kernels, activation maps, saliency (+ sanity checks), layer statistics",
    run_explain,
    define_explain,
  ),
  "seeds": (
    "train many seeds of a config (one program when it pays); "
    "writes report.md, report.json, plots/ and a run workdir per seed",
    run_seeds,
    define_seeds,
  ),
  "tune": (
    "hyperparameter search over --space; "
    "writes report.md, report.json, plots/, best_config.py and a run workdir per trial",
    run_tune,
    define_tune,
  ),
}
