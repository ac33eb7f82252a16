"""The study loop: propose a round of trials, train it rung by rung, prune, record; resume from trial.json.

Each trial applies its sampled overrides to a copy of the config (`trials.trial_config`), validates it
(a config error is a failed trial, not a stopped study) and trains it with `run.train.train_and_evaluate`
in `WORKDIR/trials/trial_0007/`, sharing one `run.assemble.Compiled` across trials so configs with equal static
parts reuse their programs.

Batches: a round's trials whose configs share a `run.assemble.group_key` -- they differ only in seeds,
`optim.lr`, `optim.weight_decay` or `model.dropout_rate` (`run.validate.RUNTIME_FIELDS`: data of the vmapped
program, not part of it) -- are trained as one vmapped program by `run.train.train_group` (the multi-seed
runner's machinery), each in its own normal workdir. A `GroupError` (or a crash of the group) falls
back to one run after another.

On a cluster (`executor`: a `run.executors.RayExecutor`): each run of a rung is one task that trains its
workdir with `run.train.train_and_evaluate` (`train_trial`); the loop reads its summary.json back. A retried
task resumes its run from the workdir's checkpoints.

Pruning (`pruning.py`): after each probe rung, the trial's value there is read from that rung run's
metrics.jsonl (its eval records of `train.monitor`: the last one, or the best with `objective="best"`)
and compared with the earlier trials' values at the same rung.

Resuming: `Study.load` keeps the completed, failed and stopped trials whose runs are still there, and
the finished rungs of the pending ones; a trial that raises is recorded as failed and the study goes on.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from jaxflow.config import ConfigError, config_hashes, one_line
from jaxflow.run import assemble, executors
from jaxflow.run import train as run_train
from jaxflow.run.validate import validate
from jaxflow.tuning import pruning, suggest
from jaxflow.tuning.trials import Trial, eval_curve, objective_value, probe_value, trial_config
from jaxflow.workdir import completed_summary, read_summary


class Study:
  """The state of one study: its settings, trials, and how it trains and records them."""

  def __init__(
    self, config, workdir, *, space, method, trials, batch, rungs, objective, quiet, suggester, executor=None
  ):
    self.config, self.workdir, self.space, self.method = config, workdir, space, method
    self.executor = executor  # None: trials train in this process
    self.budget, self.batch, self.rungs, self.objective, self.quiet = trials, batch, rungs, objective, quiet
    self.suggester = suggester
    self.mode = config.train.monitor_mode
    self.trials: list[Trial] = []
    self.compiled = assemble.Compiled()

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
      expected = self._hashes(trial.params)
      if trial.config_hash is not None and expected is not None and trial.config_hash not in expected:
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
        # run_round skips recorded rungs: only finished ones stay
        trial.rungs = trial.rungs[: self._finished_rungs(trial)]
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
    hashes = self._hashes(params)
    return None if hashes is None else hashes[0]

  def _hashes(self, params: dict) -> tuple[str, ...] | None:
    """config_hashes of the trial's config: a trial.json an earlier jaxflow wrote matches the second."""
    try:
      return config_hashes(trial_config(self.config, self.space, params))
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
    return params, suggest.impute_failed(values)

  def propose(self, start: int, count: int) -> list[dict]:
    params, values = self.observations()
    return self.suggester.suggest(start, count, params, values)

  def run_round(self, todo: list[Trial]) -> None:
    """Trains a round of trials rung by rung; after each rung the rule decides who goes on."""
    active = list(todo)
    starts = {t.index: time.perf_counter() for t in todo}
    for r, epochs in enumerate(self.rungs.epochs):
      last = r == len(self.rungs.epochs) - 1
      runs = self.rung_runs(active, r, None if last else epochs)
      self.record(runs, self.train(runs), last=last)
      active = [t for t in active if t.status == "pending" and len(t.rungs) > r]
      if not last:
        active = self.prune(active, r, starts)
    for t in active:
      t.status, t.value = "completed", t.rungs[-1]["value"]
      t.seconds += time.perf_counter() - starts[t.index]
      t.save()
      shown = ", ".join(f"{k}={_short(v)}" for k, v in t.params.items())
      self.say(f"trial {t.index}: {self.config.train.monitor}={t.value:.4f} ({shown}) {t.seconds:.1f} s")

  def rung_runs(self, active: list[Trial], r: int, epochs: int | None) -> list[tuple]:
    """(trial, config, workdir) of rung `r` for each active trial that has not recorded it; a config that
    does not validate fails its trial."""
    runs = []
    for t in active:
      if len(t.rungs) > r:  # resumed: this rung is recorded
        continue
      try:
        cfg = trial_config(self.config, self.space, t.params, epochs=epochs)
        validate(cfg)
      except Exception as e:
        self.fail(t, e)
        continue
      runs.append((t, cfg, self.rung_dir(t, r)))
    return runs

  def record(self, runs: list[tuple], results: list[tuple], *, last: bool) -> None:
    """Appends each trained run's rung (its value and learning curve) to its trial, or fails the trial."""
    metric = self.config.train.monitor.split("/")[1]
    for (t, cfg, wd), (summary, error, group) in zip(runs, results):
      ok = summary is not None and summary.get("status") == "completed"
      curve = eval_curve(wd, metric) if ok else []
      # The last rung is the trial's result (summary.json: what rerunning its config gives); a probe's
      # value, which only decides who goes on, is read from the probe run's metrics.jsonl.
      value = (
        (objective_value(summary, cfg, self.objective) if last else probe_value(curve, self.objective, self.mode))
        if ok
        else None
      )
      if value is None:
        where = "summary.json" if last else "metrics.jsonl"
        self.fail(t, error or (summary or {}).get("error") or f"no finite {self.config.train.monitor} in {wd}/{where}")
        continue
      t.rungs.append(
        {"epochs": cfg.train.epochs, "value": value, "workdir": os.path.relpath(wd, self.workdir), "curve": curve}
      )
      t.group = group

  def prune(self, active: list[Trial], r: int, starts: dict[int, float]) -> list[Trial]:
    """The trials that go on after probe rung `r` (the rule against the earlier trials' values there);
    the others are stopped. Every trial's record is saved."""
    going = []
    for t in active:
      earlier = [
        u.rungs[r]["value"]
        for u in self.trials
        if u.index < t.index and len(u.rungs) > r and u.rungs[r].get("value") is not None
      ]
      on = pruning.keep_going(t.rungs[r]["value"], earlier, rungs=self.rungs, mode=self.mode)
      t.rungs[r]["went_on"] = on
      if on:
        going.append(t)
      else:
        t.status = "stopped"
        self.say(
          f"trial {t.index} stopped after {self.rungs.epochs[r]} epochs: "
          f"{t.rungs[r]['value']:.4g} ranks below the rule's cut"
        )
      t.seconds += time.perf_counter() - starts[t.index]
      starts[t.index] = time.perf_counter()
      t.save()
    return going

  def fail(self, trial: Trial, error) -> None:
    trial.status = "failed"
    trial.error = one_line(f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error))
    trial.save()
    self.say(f"trial {trial.index} failed: {trial.error}")

  def train(self, runs: list[tuple]) -> list[tuple[dict | None, str | None, int]]:
    """(summary, error, group size) per run; runs with equal `group_key` train as one program (in this process)."""
    if self.executor is not None:
      return self._train_remote(runs)
    out: dict[int, tuple] = {}
    groups: dict[str, list[int]] = {}
    for i, (_, cfg, _) in enumerate(runs):
      groups.setdefault(assemble.group_key(cfg), []).append(i)
    for members in groups.values():
      done = {i: completed_summary(runs[i][2], runs[i][1]) for i in members}
      for i, summary in done.items():
        if summary is not None:
          out[i] = (summary, None, 1)
      members = [i for i in members if done[i] is None]
      if len(members) > 1:
        try:
          summaries = run_train.train_group(
            [runs[i][1] for i in members], [runs[i][2] for i in members], quiet=True, compiled=self.compiled
          )
          for i, summary in zip(members, summaries):
            out[i] = (summary, summary.get("error"), len(members))
          continue
        except run_train.GroupError as e:
          self.say(
            f"trials {[runs[i][0].index for i in members]} cannot train as one program ({one_line(str(e))}); "
            "one after another"
          )
        except Exception as e:
          self.say(
            f"the group of trials {[runs[i][0].index for i in members]} failed ({type(e).__name__}); one after another"
          )
      for i in members:
        out[i] = self._train_one(runs[i][1], runs[i][2])
    return [out[i] for i in range(len(runs))]

  def _train_remote(self, runs: list[tuple]) -> list[tuple[dict | None, str | None, int]]:
    """One cluster task per unfinished run; each summary is read back from the run's workdir."""
    out = [(completed_summary(wd, cfg), None, 1) for _, cfg, wd in runs]
    todo = [i for i, (summary, _, _) in enumerate(out) if summary is None]
    if not todo:
      return out
    self.say(f"trials {[runs[i][0].index for i in todo]}: one {self.executor.name} task each")
    results = self.executor.map(
      train_trial, [(runs[i][1], runs[i][2]) for i in todo], workdirs=[[runs[i][2]] for i in todo]
    )
    for i, result in zip(todo, results):
      lost = isinstance(result, executors.TaskLost)
      error = f"its {self.executor.name} task was lost: {result}" if lost else result[1]
      out[i] = (None if error else read_summary(runs[i][2]), error, 1)
    return out

  def _train_one(self, cfg, workdir: str) -> tuple[dict | None, str | None, int]:
    return (*train_trial((cfg, workdir), self.compiled), 1)


def train_trial(job: tuple, compiled: assemble.Compiled | None = None) -> tuple[dict | None, str | None]:
  """Trains one run (config, workdir) in its normal workdir: (its summary, None), or (None, its error in one
  line). Also the body of a cluster task (run.executors), where the driver reads the summary back from the workdir."""
  cfg, workdir = job
  try:
    return run_train.train_and_evaluate(cfg, workdir, quiet=True, compiled=compiled), None
  except Exception as e:
    # The error goes to trial.json (Study.fail) only: the workdir may be one the loop refused, holding
    # another run whose summary.json is not ours to overwrite.
    return None, one_line(f"{type(e).__name__}: {e}")


def _short(v) -> str:
  return f"{v:.4g}" if isinstance(v, float) else str(v)
