"""What a user sees while a run trains: one line per epoch when the output is kept (not a terminal), a bar
with the last eval metric on a terminal, nothing with quiet; the final JSON line stays alone on stdout."""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import types

import pytest

import jaxflow
from jaxflow.run.train import train_and_evaluate, train_group
from jaxflow.training import progress
from tests.conftest import ROOT, config_path, merge_overrides

TINY = ["model.widths=(16,)", "train.batch_size=128", "train.epochs=3", "train.histogram_every=1000"]
LINE = re.compile(
  r"^epoch (\d+)/(\d+)  train loss (\d+\.\d{4})  (eval \w+) (\d+\.\d{4})  ([\d,]+) examples/s  ETA (\d+:\d\d:\d\d)"
)


def tiny_config(*overrides: str):
  return jaxflow.load_config(config_path("digits_mlp.py"), merge_overrides(*TINY, *overrides))


def epoch_lines(err: str) -> list[str]:
  return [line for line in err.splitlines() if line.startswith("epoch ")]


def eval_records(workdir: str) -> list[dict]:
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [r for r in map(json.loads, f) if r["split"] == "eval"]


class Tty(io.StringIO):
  def isatty(self) -> bool:
    return True


def test_mode_follows_the_streams():
  """A bar only when both streams are terminals; stdout kept in a file means lines; quiet or a process
  other than the main one means nothing."""
  tty, kept = Tty(), io.StringIO()
  assert progress.choose_mode(quiet=False, is_main=True, stream=tty, stdout=tty) == "bar"
  assert progress.choose_mode(quiet=False, is_main=True, stream=tty, stdout=kept) == "lines"
  assert progress.choose_mode(quiet=False, is_main=True, stream=kept, stdout=tty) == "lines"
  assert progress.choose_mode(quiet=True, is_main=True, stream=tty, stdout=tty) == "off"
  assert progress.choose_mode(quiet=False, is_main=False, stream=kept, stdout=kept) == "off"
  assert progress.choose_mode(quiet=False, is_main=True, stream=object(), stdout=object()) == "lines"


def test_line_and_postfix_formats():
  line = progress.format_line(
    epoch=3,
    epochs=20,
    train_loss=0.21344,
    monitor="eval/accuracy",
    value=0.96111,
    examples_per_second=1234.4,
    eta_seconds=41.2,
  )
  assert line == "epoch 3/20  train loss 0.2134  eval accuracy 0.9611  1,234 examples/s  ETA 0:00:41"
  assert progress.postfix(0.21344, "eval/accuracy", 0.97312) == "loss 0.2134  eval accuracy 0.9731"
  assert progress.postfix(0.5, "eval/mae", None) == "loss 0.5000"  # no evaluation yet
  assert progress.format_duration(3 * 3600 + 5 * 60 + 7.4) == "3:05:07"
  assert progress.format_duration(-1) == "0:00:00"
  group = progress.format_line(
    epoch=1,
    epochs=2,
    train_loss=None,
    monitor="eval/mae",
    value=1.5,
    examples_per_second=None,
    eta_seconds=None,
    run="g1",
  )
  assert group == "epoch 1/2  eval mae 1.5000  [g1]"


def fake_book(epoch: int, loss: float, accuracy: float, failed=None):
  return types.SimpleNamespace(
    epoch=epoch, failed=failed, workdir="/x/g0", train_last={"loss": loss}, eval_last={"accuracy": accuracy}
  )


class Clock:
  def __init__(self):
    self.now = 100.0

  def __call__(self) -> float:
    return self.now


def test_lines_no_more_often_than_min_seconds_and_always_the_last():
  """Epochs ending 5, 9, 13, ... 29 s after the start, min_seconds=10: lines for epochs 3 (13 s) and 6 (25 s),
  then the last epoch's; the ETA is the mean epoch time (compilation left out) times the epochs left."""
  clock, out = Clock(), io.StringIO()
  display = progress.ProgressDisplay(
    "lines", epochs=7, monitor="eval/accuracy", stream=out, min_seconds=10, clock=clock
  )
  display.start(step=0, epoch=0, steps_per_epoch=5, compile_seconds=1.0)
  for epoch in range(1, 8):
    clock.now += 4.0 if epoch > 1 else 5.0
    book = fake_book(epoch, loss=1.0 / epoch, accuracy=0.5 + epoch / 100)
    display.epoch_end(epoch=epoch, books=[book], examples_per_second=1000.0, compile_seconds=2.0, last=epoch == 7)
  display.close()
  lines = out.getvalue().splitlines()
  assert [int(line.split()[1].split("/")[0]) for line in lines] == [3, 6, 7]
  assert lines[0] == "epoch 3/7  train loss 0.3333  eval accuracy 0.5300  1,000 examples/s  ETA 0:00:16"
  assert lines[-1].endswith("ETA 0:00:00")


def test_an_epoch_held_back_is_written_at_close():
  """The loop ended without a last epoch (an interrupt, a failure): the last recorded epoch still shows."""
  clock, out = Clock(), io.StringIO()
  display = progress.ProgressDisplay(
    "lines", epochs=9, monitor="eval/accuracy", stream=out, min_seconds=60, clock=clock
  )
  display.start(step=0, epoch=0, steps_per_epoch=5)
  for epoch in (1, 2):
    clock.now += 1
    display.epoch_end(epoch=epoch, books=[fake_book(epoch, 0.5, 0.9)], examples_per_second=None, last=False)
  assert out.getvalue() == ""
  display.close()
  assert epoch_lines(out.getvalue()) == ["epoch 2/9  train loss 0.5000  eval accuracy 0.9000  ETA 0:00:07"]


def test_group_line_shows_the_first_run_that_recorded_the_epoch():
  out = io.StringIO()
  display = progress.ProgressDisplay("lines", epochs=2, monitor="eval/accuracy", stream=out, min_seconds=0)
  display.start(step=0, epoch=0, steps_per_epoch=5)
  books = [fake_book(1, 0.1, 0.1, failed="nan"), fake_book(2, 0.2, 0.2), fake_book(2, 0.3, 0.3)]
  books[1].workdir, books[2].workdir = "/x/g1/", "/x/g2"
  display.epoch_end(epoch=2, books=books, examples_per_second=3000.0, last=True)
  (line,) = epoch_lines(out.getvalue())
  assert "train loss 0.2000  eval accuracy 0.2000  3,000 examples/s" in line and line.endswith("[g1, run 1 of 3]")


def test_bar_postfix_shows_the_last_eval_metric():
  out = Tty()
  display = progress.ProgressDisplay("bar", epochs=2, monitor="eval/loss", stream=out, desc="run")
  display.start(step=0, epoch=0, steps_per_epoch=10)
  book = types.SimpleNamespace(epoch=1, failed=None, workdir="run", train_last={"loss": 0.71}, eval_last={})
  display.advance(10, [book])
  book.eval_last = {"loss": 0.65432}
  display.epoch_end(epoch=1, books=[book], examples_per_second=10.0, last=False)
  assert display.bar.postfix == "loss 0.7100  eval loss 0.6543"
  display.close()
  assert "eval loss 0.6543" in out.getvalue() and "epoch 1/2" not in out.getvalue()


@pytest.mark.slow
def test_one_line_per_epoch_when_not_a_terminal(tmp_path, capsys):
  """Output captured (not a terminal), no throttle: epochs 1, 2, 3, each with the eval accuracy that
  metrics.jsonl holds, a throughput and an ETA, on stderr; nothing on stdout."""
  workdir = str(tmp_path / "run")
  train_and_evaluate(tiny_config(), workdir, progress_seconds=0)
  captured = capsys.readouterr()
  assert captured.out == ""
  lines = epoch_lines(captured.err)
  matches = [LINE.match(line) for line in lines]
  assert all(matches), lines
  assert [(int(m[1]), int(m[2])) for m in matches] == [(1, 3), (2, 3), (3, 3)]
  assert {m[4] for m in matches} == {"eval accuracy"}
  assert [m[5] for m in matches] == [f"{r['accuracy']:.4f}" for r in eval_records(workdir)]
  assert all(int(m[6].replace(",", "")) > 0 for m in matches) and matches[-1][7] == "0:00:00"


@pytest.mark.slow
def test_throttled_to_the_last_epoch_and_quiet_says_nothing(tmp_path, capsys):
  workdir = str(tmp_path / "slow")
  train_and_evaluate(tiny_config("train.monitor=eval/loss", "train.monitor_mode=min"), workdir, progress_seconds=1e9)
  (line,) = epoch_lines(capsys.readouterr().err)
  assert line.startswith("epoch 3/3  ") and f"eval loss {eval_records(workdir)[-1]['loss']:.4f}" in line
  train_and_evaluate(tiny_config(), str(tmp_path / "quiet"), quiet=True, progress_seconds=0)
  captured = capsys.readouterr()
  assert epoch_lines(captured.err) == [] and captured.out == ""


@pytest.mark.slow
def test_a_group_writes_one_line_per_epoch(tmp_path, capsys):
  configs = [tiny_config("train.epochs=2", f"seeds.init={s}") for s in (1, 2)]
  workdirs = [str(tmp_path / f"g{i}") for i in range(2)]
  train_group(configs, workdirs, progress_seconds=0)
  lines = epoch_lines(capsys.readouterr().err)
  assert [line.split()[1] for line in lines] == ["1/2", "2/2"]
  assert all(line.endswith("[g0, run 0 of 2]") for line in lines)
  assert f"eval accuracy {eval_records(workdirs[0])[-1]['accuracy']:.4f}" in lines[-1]


BAR_SCRIPT = """
import sys
import termios
import jaxflow
from jaxflow.run.train import train_and_evaluate
config = jaxflow.load_config(sys.argv[1], ["model.widths=(16,)", "train.epochs=2", "train.histogram_every=1000"])
train_and_evaluate(config, sys.argv[2])
"""


@pytest.mark.slow
def test_terminal_bar_shows_the_last_eval_metric(tmp_path):
  """In a pseudo-terminal (stdout and stderr both terminals): a bar whose postfix ends at the last epoch's
  eval accuracy, as metrics.jsonl holds it, and no per-epoch lines."""
  workdir = str(tmp_path / "bar")
  main, child = pty.openpty()
  fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))  # a new pty is 0 columns wide
  proc = subprocess.Popen(
    [sys.executable, "-c", BAR_SCRIPT, config_path("digits_mlp.py"), workdir],
    stdin=subprocess.DEVNULL,
    stdout=child,
    stderr=child,
    cwd=ROOT,
  )
  os.close(child)
  chunks = []
  while True:
    try:
      chunk = os.read(main, 4096)
    except OSError:  # the child closed the terminal (EIO on Linux)
      break
    if not chunk:
      break
    chunks.append(chunk)
  os.close(main)
  assert proc.wait(timeout=300) == 0
  screen = b"".join(chunks).decode(errors="replace")
  last = eval_records(workdir)[-1]["accuracy"]
  assert f"eval accuracy {last:.4f}" in screen and "step" in screen
  assert not any(line.lstrip("\r").startswith("epoch ") for line in screen.splitlines())
