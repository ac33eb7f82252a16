"""What a person watching a training run sees: a bar on a terminal, one line per epoch anywhere else.

Three modes, chosen once per call of the training loop (`choose_mode`):

- "bar": stderr and stdout are both terminals. A tqdm bar on stderr, its postfix the last logged train loss
  and the last evaluation of the run's monitor metric (`loss 0.2134  eval accuracy 0.9731`).
- "lines": either stream is not a terminal (`jaxflow train ... > log.txt`, `2>&1 | tee`, nohup, CI, a
  notebook). A bar's carriage returns would fill a file with fragments, so instead one line per epoch on
  stderr: `epoch 3/20  train loss 0.2134  eval accuracy 0.9611  1,234 examples/s  ETA 0:00:41`. At most one
  per `min_seconds` (a fast run writes a line every `min_seconds`, not every epoch), always one for the last
  epoch the run trains (also when it stops early or is interrupted).
- "off": `quiet`, or a process other than the main one of a multi-process run.

Progress never goes to stdout: there the CLI prints one JSON line at the end, which scripts parse.

A group of runs trained as one program (`train_group`: the seeds runner's vmap/devices modes, a tuning
batch) gets ONE display, not one per run: the runs advance together, so one bar or one line per epoch tells
where the group is. Its train loss and eval metric are those of the first run that recorded the epoch (its
workdir's name and the group's size end the line), its examples/s count every run of the group.
"""

from __future__ import annotations

import os
import sys
import time

from tqdm import tqdm

MODES = ("bar", "lines", "off")


def _isatty(stream) -> bool:
  isatty = getattr(stream, "isatty", None)
  return bool(isatty and isatty())


def choose_mode(*, quiet: bool, is_main: bool, stream, stdout) -> str:
  """The display for a run writing its progress to `stream` while its result goes to `stdout`.

  A bar only when both are terminals: `stdout` redirected means the output is being kept (a log file, a
  pipe), where per-epoch lines read well and a bar's redraws do not."""
  if quiet or not is_main:
    return "off"
  return "bar" if _isatty(stream) and _isatty(stdout) else "lines"


def metric_label(monitor: str) -> str:
  """`eval/accuracy` -> `eval accuracy`: how the monitor metric is named on screen."""
  return monitor.replace("/", " ")


def format_duration(seconds: float) -> str:
  """H:MM:SS (hours not wrapped into days), as an ETA reads."""
  total = max(0, int(round(seconds)))
  hours, rest = divmod(total, 3600)
  return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def postfix(train_loss: float | None, monitor: str, value: float | None) -> str:
  """The bar's postfix: the last logged train loss and the last evaluation of the monitor metric."""
  parts = []
  if train_loss is not None:
    parts.append(f"loss {train_loss:.4f}")
  if value is not None:
    parts.append(f"{metric_label(monitor)} {value:.4f}")
  return "  ".join(parts)


def format_line(
  *,
  epoch: int,
  epochs: int,
  train_loss: float | None,
  monitor: str,
  value: float | None,
  examples_per_second: float | None,
  eta_seconds: float | None,
  run: str | None = None,
) -> str:
  """One epoch's line; a field with nothing to show yet is left out (a group's run names itself last)."""
  parts = [f"epoch {epoch}/{epochs}"]
  if train_loss is not None:
    parts.append(f"train loss {train_loss:.4f}")
  if value is not None:
    parts.append(f"{metric_label(monitor)} {value:.4f}")
  if examples_per_second is not None:
    parts.append(f"{examples_per_second:,.0f} examples/s")
  if eta_seconds is not None:
    parts.append(f"ETA {format_duration(eta_seconds)}")
  if run is not None:
    parts.append(f"[{run}]")
  return "  ".join(parts)


def _reporting(books: list, epoch: int | None = None):
  """(index, book) whose numbers are shown: the first run that recorded `epoch` (any not failed when
  None), else None (every run of the group failed)."""
  for i, book in enumerate(books):
    if book.failed is None and (epoch is None or book.epoch == epoch):
      return i, book
  return None


def _monitored(book, monitor: str) -> float | None:
  split, name = monitor.split("/", 1)
  record = book.eval_last if split == "eval" else book.train_last
  value = (record or {}).get(name)
  return None if value is None else float(value)


class ProgressDisplay:
  """The loop's progress display (see the module docstring). `start` when the epochs begin, `advance`
  after each train log, `epoch_end` after each epoch is recorded, `close` when the run ends however it
  ends. `clock` is injectable so that the ETA and the line throttle can be tested without waiting."""

  def __init__(
    self,
    mode: str,
    *,
    epochs: int,
    monitor: str,
    desc: str = "",
    stream=None,
    min_seconds: float = 10.0,
    clock=time.perf_counter,
  ):
    if mode not in MODES:
      raise ValueError(f"progress mode {mode!r}; allowed: {', '.join(MODES)}")
    self.mode, self.epochs, self.monitor = mode, epochs, monitor
    self.desc, self.min_seconds, self.clock = desc, min_seconds, clock
    self.stream = sys.stderr if stream is None else stream
    self.bar = None
    self.started, self.start_epoch, self.compile_at_start = None, 0, 0.0
    self.last_line_at, self.pending = None, None  # when the last line was written; an epoch's unwritten line

  @classmethod
  def off(cls) -> ProgressDisplay:
    return cls("off", epochs=0, monitor="eval/loss")

  def start(self, *, step: int, epoch: int, steps_per_epoch: int, compile_seconds: float = 0.0) -> None:
    """The epochs begin at `step` (`epoch` epochs done): the clock starts, the bar appears."""
    self.started = self.last_line_at = self.clock()
    self.start_epoch, self.compile_at_start = epoch, compile_seconds
    if self.mode == "bar":
      self.bar = tqdm(
        total=steps_per_epoch * self.epochs,
        initial=step,
        unit="step",
        dynamic_ncols=True,
        desc=self.desc,
        file=self.stream,
      )

  def advance(self, steps: int, books: list) -> None:
    """`steps` more trained; the bar shows the reporting run's last train loss and eval metric."""
    if self.bar is None:
      return
    self.bar.update(steps)
    self._set_postfix(books)

  def _set_postfix(self, books: list) -> None:
    chosen = _reporting(books)
    if chosen is not None:
      book = chosen[1]
      text = postfix(book.train_last.get("loss"), self.monitor, _monitored(book, self.monitor))
      self.bar.set_postfix_str(text, refresh=False)

  def epoch_end(
    self, *, epoch: int, books: list, examples_per_second: float | None, compile_seconds: float = 0.0, last: bool
  ) -> None:
    """Epoch `epoch` (1-based) is recorded by every active run. `last`: the loop trains no further epoch.
    `compile_seconds`: the programs' compile time so far (left out of the ETA: it is not spent again)."""
    if self.mode == "bar" and self.bar is not None:
      self._set_postfix(books)
      self.bar.refresh()
      return
    if self.mode != "lines":
      return
    self.pending = self._line(epoch, books, examples_per_second, compile_seconds)
    now = self.clock()
    if last or now - self.last_line_at >= self.min_seconds:
      self._write_pending(now)

  def _line(self, epoch: int, books: list, examples_per_second, compile_seconds: float) -> str:
    chosen = _reporting(books, epoch)
    book = chosen[1] if chosen else None
    done = epoch - self.start_epoch
    elapsed = self.clock() - self.started - (compile_seconds - self.compile_at_start)
    eta = max(elapsed, 0.0) / done * (self.epochs - epoch) if done > 0 else None
    return format_line(
      epoch=epoch,
      epochs=self.epochs,
      train_loss=None if book is None else book.train_last.get("loss"),
      monitor=self.monitor,
      value=None if book is None else _monitored(book, self.monitor),
      examples_per_second=examples_per_second,
      eta_seconds=eta,
      run=None if len(books) == 1 or chosen is None else f"{_name(book)}, run {chosen[0]} of {len(books)}",
    )

  def _write_pending(self, now: float) -> None:
    print(self.pending, file=self.stream, flush=True)
    self.pending, self.last_line_at = None, now

  def close(self) -> None:
    """The last epoch's line when the throttle held it back (the loop ended without a `last` epoch: an
    interrupt, a failure), then the bar goes."""
    if self.pending is not None:
      self._write_pending(self.clock())
    if self.bar is not None:
      self.bar.close()
      self.bar = None


def _name(book) -> str:
  return os.path.basename(os.path.normpath(book.workdir))


def for_runs(*, workdirs: list[str], config, quiet: bool, is_main: bool, min_seconds: float) -> ProgressDisplay:
  """The display of a run or a group: its mode from the streams now (`choose_mode`), its bar named by the
  first run's workdir (`+N` more runs in a group)."""
  mode = choose_mode(quiet=quiet, is_main=is_main, stream=sys.stderr, stdout=sys.stdout)
  desc = os.path.basename(os.path.normpath(workdirs[0])) + (f" +{len(workdirs) - 1}" if len(workdirs) > 1 else "")
  return ProgressDisplay(
    mode,
    epochs=config.train.epochs,
    monitor=config.train.monitor,
    desc=desc,
    stream=sys.stderr,
    min_seconds=min_seconds,
  )
