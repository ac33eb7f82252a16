"""`jaxflow tune`: hyperparameter search over a config, one normal run workdir per trial.

  run_tune(config, workdir, space="configs/spaces/digits_mlp.py", method="bo", trials=30, batch=1,
           early_stop="none", acquisition="ei", objective="final")

Each trial applies its sampled overrides to a copy of the config (`space.overrides`: parameters that
are config fields, plus what the space's `derive` makes of them), validates it (a config error is a
failed trial, not a stopped study) and trains it with `loop.train_and_evaluate` in
`WORKDIR/trials/trial_0007/`, sharing one `loop.Compiled` across trials so configs with equal static
parts reuse their programs.

The objective is the trial's `train.monitor` metric in the direction `train.monitor_mode`: by default
its *final* evaluation (summary.json `final.eval`, what the config gives when rerun), or with
`objective="best"` its best epoch's value (summary.json `best.value`, optimistic: the epoch is picked
on the evaluation split).

Batches (`batch` > 1): that many proposals per round (a kriging-believer batch for BO). A round's trials
whose configs share a `loop.group_key` -- they differ only in seeds, `optim.lr`, `optim.weight_decay` or
`model.dropout_rate` (`loop.RUNTIME_FIELDS`: data of the vmapped program, not part of it) -- are trained
as one vmapped program by `loop.train_group` (the multi-seed runner's machinery), each in its own normal
workdir. A `loop.GroupError` (or a crash of the group) falls back to one run after another.

Early stopping (`early_stop.py`): after each probe rung, the trial's value there is read from that
rung run's metrics.jsonl (its eval records of `train.monitor`: the last one, or the best with
`objective="best"`) and compared with the earlier trials' values at the same rung.

Resumable: every trial's record (`trial.json`: params, status, objective, error, rungs) is written as
soon as it is proposed and after every run; a rerun of the same command keeps the completed, failed and
stopped trials, retrains the pending ones (their runs resume from their checkpoints) and proposes the
rest from all of them. A trial that raises (a NaN loss, a config error, anything else) is recorded as
failed with its error, and the study goes on.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time

import ml_collections
import numpy as np

from jaxflow.config import ConfigError, config_hash, one_line, to_dict
from jaxflow.tune import pruning as early_stop_lib
from jaxflow.tune import space as space_lib
from jaxflow.tune import report as tune_report
from jaxflow.tune import suggest
from jaxflow.workdir import completed_summary

OBJECTIVES = ("final", "best")
STATUSES = ("pending", "completed", "failed", "stopped")


@dataclasses.dataclass
class Trial:
  index: int
  params: dict
  workdir: str
  status: str = "pending"
  value: float | None = None  # the objective in the metric's own direction (completed trials)
  error: str | None = None
  config_hash: str | None = None
  rungs: list[dict] = dataclasses.field(default_factory=list)  # {"epochs", "value", "workdir", "curve", "went_on"}
  seconds: float = 0.0
  group: int = 1  # runs in the vmapped program its last run trained in

  def save(self) -> None:
    os.makedirs(self.workdir, exist_ok=True)
    tmp = os.path.join(self.workdir, "trial.json.tmp")
    with open(tmp, "w") as f:
      json.dump(dataclasses.asdict(self), f, indent=2, default=_json_default)
    os.replace(tmp, os.path.join(self.workdir, "trial.json"))

  @classmethod
  def load(cls, path: str) -> Trial:
    with open(path) as f:
      data = json.load(f)
    fields = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in fields})


def _json_default(value):
  if isinstance(value, (np.floating, np.integer)):
    return value.item()
  if isinstance(value, tuple):
    return list(value)
  raise TypeError(type(value).__name__)


def trial_config(
  config: ml_collections.ConfigDict, space: space_lib.Space, params: dict, *, epochs: int | None = None
) -> ml_collections.ConfigDict:
  """The base config with one trial's overrides (and a rung's epoch budget)."""
  trial = config.copy_and_resolve_references()
  space_lib.apply(trial, space.overrides(params))
  if epochs is not None:
    trial.train.epochs = epochs
  return trial


def eval_curve(workdir: str, metric: str) -> list[float]:
  """The run's `metric` (e.g. "accuracy") at every evaluation, in order, from its metrics.jsonl."""
  out = []
  try:
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
      for line in f:
        record = json.loads(line)
        if record.get("split") == "eval" and isinstance(record.get(metric), (int, float)):
          out.append(float(record[metric]))
  except (OSError, ValueError):
    return []
  return out


def _probe_value(curve: list[float], objective: str, mode: str) -> float | None:
  """A probe rung's value from its learning curve: the last evaluation, or the best one."""
  finite = [v for v in curve if math.isfinite(v)]
  if not curve or not finite or (objective == "final" and not math.isfinite(curve[-1])):
    return None
  if objective == "final":
    return curve[-1]
  return max(finite) if mode == "max" else min(finite)


def _objective(summary: dict, config, objective: str) -> float | None:
  metric = config.train.monitor.split("/")[1]
  value = summary["final"]["eval"].get(metric) if objective == "final" else summary["best"]["value"]
  return float(value) if value is not None and math.isfinite(value) else None


class Study:
  """The state of one study: its settings, trials, and how it trains and records them."""

  def __init__(self, config, workdir, *, space, method, trials, batch, rungs, objective, quiet, suggester):
    self.config, self.workdir, self.space, self.method = config, workdir, space, method
    self.budget, self.batch, self.rungs, self.objective, self.quiet = trials, batch, rungs, objective, quiet
    self.suggester = suggester
    self.mode = config.train.monitor_mode
    self.trials: list[Trial] = []
    from jaxflow.training import loop

    self.loop = loop
    self.compiled = loop.Compiled()

  def say(self, message: str) -> None:
    if not self.quiet:
      print(f"jaxflow tune: {message}", file=sys.stderr, flush=True)

  def trial_dir(self, index: int) -> str:
    return os.path.join(self.workdir, "trials", f"trial_{index:04d}")

  def rung_dir(self, trial: Trial, rung: int) -> str:
    if rung == len(self.rungs.epochs) - 1:
      return trial.workdir
    return os.path.join(trial.workdir, "rungs", f"epochs_{self.rungs.epochs[rung]:03d}")

  # --- resuming ---------------------------------------------------------------------------------------

  def load(self) -> None:
    root = os.path.join(self.workdir, "trials")
    names = sorted(n for n in os.listdir(root) if n.startswith("trial_")) if os.path.isdir(root) else []
    for name in names:
      path = os.path.join(root, name, "trial.json")
      if not os.path.exists(path):
        continue
      trial = Trial.load(path)
      trial.workdir = os.path.join(root, name)  # the study folder may have moved
      trial.params = self.space.normalize(trial.params)  # JSON gives tuple values back as lists
      expected = self._hash(trial.params)
      if trial.config_hash is not None and expected is not None and trial.config_hash != expected:
        raise ConfigError(
          f"{trial.workdir} was run with another base config or space (its config hash differs); "
          "use another --workdir, or rerun with the config and space that study used"
        )
      if (
        trial.status == "completed"
        and completed_summary(trial.workdir, trial_config(self.config, self.space, trial.params)) is None
      ):
        trial.status, trial.value = "pending", None  # its run is gone or unfinished: train it again
      if trial.status == "pending":
        trial.rungs = trial.rungs[
          : self._finished_rungs(trial)
        ]  # run_round skips recorded rungs: only finished ones stay
      self.trials.append(trial)
    self.trials.sort(key=lambda t: t.index)
    if [t.index for t in self.trials] != list(range(len(self.trials))):
      raise ConfigError(
        f"{root} holds trials {[t.index for t in self.trials]}: not numbered 0..n-1; use another --workdir"
      )

  def _finished_rungs(self, trial: Trial) -> int:
    """How many of a trial's recorded rungs, from the first, still have their run finished in its workdir."""
    n = 0
    for r, _ in enumerate(trial.rungs[: len(self.rungs.epochs)]):
      last = r == len(self.rungs.epochs) - 1
      try:
        cfg = trial_config(self.config, self.space, trial.params, epochs=None if last else self.rungs.epochs[r])
      except Exception:
        break
      if completed_summary(self.rung_dir(trial, r), cfg) is None:
        break
      n += 1
    return n

  def _hash(self, params: dict) -> str | None:
    try:
      return config_hash(trial_config(self.config, self.space, params))
    except Exception:
      return None

  # --- the loop ----------------------------------------------------------------------------------------

  def run(self) -> None:
    while True:
      todo = [t for t in self.trials if t.status == "pending"]
      if not todo:
        n = len(self.trials)
        if n >= self.budget:
          return
        proposals = self.propose(n, min(self.batch, self.budget - n))
        if not proposals:
          self.say(f"the grid has {n} points: done")
          return
        todo = [Trial(index=n + i, params=p, workdir=self.trial_dir(n + i)) for i, p in enumerate(proposals)]
        for trial in todo:
          trial.config_hash = self._hash(trial.params)
          trial.save()
        self.trials.extend(todo)
      self.run_round(todo)

  def observations(self) -> tuple[list[dict], list[float]]:
    """Finished trials as (assignments, values to minimize). Failed trials get the worst value seen (the
    region failed); stopped ones their last rung's value shifted by the median gain of the trials that
    went on from that rung to the end."""
    sign = -1.0 if self.mode == "max" else 1.0
    done = [t for t in self.trials if t.status in ("completed", "stopped", "failed")]
    gains: dict[int, list[float]] = {}
    for t in done:
      if t.status == "completed":
        for r, rung in enumerate(t.rungs[:-1]):
          if rung.get("value") is not None and t.value is not None:
            gains.setdefault(r, []).append(t.value - rung["value"])
    params, values = [], []
    for t in done:
      if t.status == "completed":
        value = t.value
      elif t.status == "stopped":
        r, last = len(t.rungs) - 1, t.rungs[-1]["value"]
        value = last + float(np.median(gains[r])) if gains.get(r) else last
      else:
        value = None
      params.append(t.params)
      values.append(np.nan if value is None else sign * value)
    finite = [v for v in values if np.isfinite(v)]
    worst = max(finite) if finite else np.nan
    return params, [v if np.isfinite(v) else worst for v in values]

  def propose(self, start: int, count: int) -> list[dict]:
    params, values = self.observations()
    return self.suggester.suggest(start, count, params, values)

  def run_round(self, todo: list[Trial]) -> None:
    """Trains a round of trials rung by rung; after each rung the rule decides who goes on."""
    active = list(todo)
    starts = {t.index: time.perf_counter() for t in todo}
    for r, epochs in enumerate(self.rungs.epochs):
      last = r == len(self.rungs.epochs) - 1
      runs = []
      for t in active:
        if len(t.rungs) > r:  # resumed: this rung is recorded
          continue
        try:
          cfg = trial_config(self.config, self.space, t.params, epochs=None if last else epochs)
          from jaxflow.training.validate import validate

          validate(cfg)
        except Exception as e:
          self.fail(t, e)
          continue
        runs.append((t, cfg, self.rung_dir(t, r)))
      metric = self.config.train.monitor.split("/")[1]
      for (t, cfg, wd), (summary, error, group) in zip(runs, self.train(runs)):
        ok = summary is not None and summary.get("status") == "completed"
        curve = eval_curve(wd, metric) if ok else []
        # The last rung is the trial's result (summary.json: what rerunning its config gives); a probe's
        # value, which only decides who goes on, is read from the probe run's metrics.jsonl.
        value = (
          (_objective(summary, cfg, self.objective) if last else _probe_value(curve, self.objective, self.mode))
          if ok
          else None
        )
        if value is None:
          where = "summary.json" if last else "metrics.jsonl"
          self.fail(
            t, error or (summary or {}).get("error") or f"no finite {self.config.train.monitor} in {wd}/{where}"
          )
          continue
        t.rungs.append(
          {"epochs": cfg.train.epochs, "value": value, "workdir": os.path.relpath(wd, self.workdir), "curve": curve}
        )
        t.group = group
      active = [t for t in active if t.status == "pending" and len(t.rungs) > r]
      if not last:
        going = []
        for t in active:
          earlier = [
            u.rungs[r]["value"]
            for u in self.trials
            if u.index < t.index and len(u.rungs) > r and u.rungs[r].get("value") is not None
          ]
          on = early_stop_lib.keep_going(t.rungs[r]["value"], earlier, rungs=self.rungs, mode=self.mode)
          t.rungs[r]["went_on"] = on
          if on:
            going.append(t)
          else:
            t.status = "stopped"
            self.say(
              f"trial {t.index} stopped after {epochs} epochs: {t.rungs[r]['value']:.4g} ranks below the rule's cut"
            )
          t.seconds += time.perf_counter() - starts[t.index]
          starts[t.index] = time.perf_counter()
          t.save()
        active = going
    for t in active:
      t.status, t.value = "completed", t.rungs[-1]["value"]
      t.seconds += time.perf_counter() - starts[t.index]
      t.save()
      shown = ", ".join(f"{k}={_short(v)}" for k, v in t.params.items())
      self.say(f"trial {t.index}: {self.config.train.monitor}={t.value:.4f} ({shown}) {t.seconds:.1f} s")

  def fail(self, trial: Trial, error) -> None:
    trial.status = "failed"
    trial.error = one_line(f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error))
    trial.save()
    self.say(f"trial {trial.index} failed: {trial.error}")

  def train(self, runs: list[tuple]) -> list[tuple[dict | None, str | None, int]]:
    """(summary, error, group size) per run; runs with equal `loop.group_key` train as one program."""
    out: dict[int, tuple] = {}
    groups: dict[str, list[int]] = {}
    for i, (_, cfg, _) in enumerate(runs):
      groups.setdefault(self.loop.group_key(cfg), []).append(i)
    for members in groups.values():
      done = {i: completed_summary(runs[i][2], runs[i][1]) for i in members}
      for i, summary in done.items():
        if summary is not None:
          out[i] = (summary, None, 1)
      members = [i for i in members if done[i] is None]
      if len(members) > 1:
        try:
          summaries = self.loop.train_group(
            [runs[i][1] for i in members], [runs[i][2] for i in members], quiet=True, compiled=self.compiled
          )
          for i, summary in zip(members, summaries):
            out[i] = (summary, summary.get("error"), len(members))
          continue
        except self.loop.GroupError as e:
          self.say(
            f"trials {[runs[i][0].index for i in members]} cannot train as one program ({one_line(str(e))}); one after another"
          )
        except Exception as e:
          self.say(
            f"the group of trials {[runs[i][0].index for i in members]} failed ({type(e).__name__}); one after another"
          )
      for i in members:
        out[i] = self._train_one(runs[i][1], runs[i][2])
    return [out[i] for i in range(len(runs))]

  def _train_one(self, cfg, workdir: str) -> tuple[dict | None, str | None, int]:
    try:
      return self.loop.train_and_evaluate(cfg, workdir, quiet=True, compiled=self.compiled), None, 1
    except Exception as e:
      # The error goes to trial.json (Study.fail) only: the workdir may be one the loop refused, holding
      # another run whose summary.json is not ours to overwrite.
      return None, one_line(f"{type(e).__name__}: {e}"), 1


def _short(v) -> str:
  return f"{v:.4g}" if isinstance(v, float) else str(v)


def _as_json(value):
  """`value` as it reads back from JSON (tuples -> lists), to compare with what study.json holds."""
  return json.loads(json.dumps(value, default=_json_default))


def _check_settings(workdir: str, settings: dict) -> dict:
  """A rerun must be the same study: the same base config, space and early-stopping rule. Returns the
  previous study.json ({} for a new study)."""
  path = os.path.join(workdir, "study.json")
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    previous = json.load(f)
  for key, what in (
    ("base_config_hash", "base config"),
    ("space", "search space"),
    ("early_stop", "early stopping"),
    ("objective", "objective"),
  ):
    if previous.get(key) != _as_json(settings[key]):
      raise ConfigError(
        f"{workdir} holds a study with another {what}; use another --workdir, or rerun with the settings in {path}"
      )
  return previous


def run_tune(
  config: ml_collections.ConfigDict,
  workdir: str,
  *,
  space,
  method: str = "bo",
  trials: int = 30,
  batch: int = 1,
  early_stop: str = "none",
  acquisition: str = "ei",
  objective: str = "final",
  init_trials: int | None = None,
  seed: int = 0,
  config_file: str | None = None,
  quiet: bool = True,
) -> dict:
  """Runs (or continues) the study in `workdir`; returns its report (also report.json / report.md /
  plots / best_config.py). Every argument is checked before anything is written."""
  start = time.perf_counter()
  for name, value in (("trials", trials), ("batch", batch)):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
      raise ConfigError(f"--{name}={value!r} must be a positive integer")
  if init_trials is not None and (not isinstance(init_trials, int) or init_trials < 1):
    raise ConfigError(f"--init_trials={init_trials!r} must be a positive integer")
  if objective not in OBJECTIVES:
    raise ConfigError(f"--objective={objective!r} is not known; allowed: {', '.join(OBJECTIVES)}")
  space = space_lib.load_space(space)
  suggester = suggest.Suggester(
    space, method=method, seed=seed, kind=acquisition, init_trials=init_trials, budget=trials
  )
  rungs = early_stop_lib.make_rungs(early_stop, config.train.epochs)
  from jaxflow.training.validate import validate

  validate(config)
  space.check(config)
  if early_stop != "none" and "train.epochs" in space.override_fields:
    raise ConfigError(
      "--early_stop uses train.epochs as its budget, so the space may not tune train.epochs; remove it or use --early_stop=none"
    )
  settings = {
    "base_config_hash": config_hash(config),
    "space": space.describe(),
    "early_stop": early_stop,
    "objective": objective,
    "method": method,
    "acquisition": acquisition,
    "seed": seed,
    "config_file": config_file,
  }
  previous = _check_settings(workdir, settings)
  if method == "grid":  # built (and a too-big grid refused) before anything is written; a resumed grid keeps its levels
    if previous.get("method") == "grid" and previous.get("grid_levels") is not None:
      suggester.grid_levels, suggester.grid_budget = (
        int(previous["grid_levels"]),
        int(previous.get("grid_budget") or previous["trials"]),
      )
    suggester.grid_points()
  study = Study(
    config,
    workdir,
    space=space,
    method=method,
    trials=trials,
    batch=batch,
    rungs=rungs,
    objective=objective,
    quiet=quiet,
    suggester=suggester,
  )
  study.load()
  os.makedirs(os.path.join(workdir, "trials"), exist_ok=True)
  with open(os.path.join(workdir, "study.json"), "w") as f:
    json.dump(
      {
        **settings,
        "trials": trials,
        "batch": batch,
        "rungs": list(rungs.epochs),
        "metric": config.train.monitor,
        "mode": config.train.monitor_mode,
        "grid_levels": suggester.grid_levels,
        "grid_budget": suggester.grid_budget,
      },
      f,
      indent=2,
      default=_json_default,
    )
  resumed = sum(t.status != "pending" for t in study.trials)
  study.run()
  report = tune_report.build(
    study,
    settings=settings
    | {
      "trials": trials,
      "batch": batch,
      "rungs": list(rungs.epochs),
      "grid_levels": suggester.grid_levels,
      "init_trials": suggester.init_trials if method == "bo" else None,
    },
  )
  report["resumed_trials"] = resumed
  report["wall_seconds"] = time.perf_counter() - start
  report["config"] = to_dict(config)
  tune_report.write(report, study, config_file=config_file)
  return report
