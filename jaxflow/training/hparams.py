"""TensorBoard's HPARAMS tab for studies: each tune trial and each seed as a session with its settings and finals.

The HParams plugin reads three kinds of summaries (tensorboardX.summary.hparams builds them): one
`experiment` (which hyperparameters and metrics exist), and per session a `session_start_info` (the
session's values) and a `session_end_info` (its status). A session is the TensorBoard run it is written
in, and its metrics are read from that run's scalars. So each session is written into its run's own `tb/`
folder, beside the run's training scalars (one click from the table to the curves), with the final metrics
as scalars `hparams/<name>`; the experiment goes to the study's `WORKDIR/tb/`. Point TensorBoard at the
study folder: `tensorboard --logdir=WORKDIR`.

Each summary file has a fixed suffix and is replaced on every write, so a study rerun (or one extended by more
seeds or trials) lists each session once.
"""

from __future__ import annotations

import glob
import os
import time

from tensorboardX import summary as tb_summary
from tensorboardX.event_file_writer import EventsWriter
from tensorboardX.proto.api_pb2 import Status
from tensorboardX.proto.event_pb2 import Event
from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData, SessionEndInfo
from tensorboardX.proto.summary_pb2 import Summary

from jaxflow.workdir import read_summary

SUFFIX = ".hparams"
METRIC_PREFIX = "hparams/"
# The plugin knows success, failure, running and unknown; a trial stopped early by pruning finished what it was
# given, so it counts as a success (its objective is its last rung's).
STATUS = {"completed": "STATUS_SUCCESS", "stopped": "STATUS_SUCCESS", "failed": "STATUS_FAILURE"}


def run_finals(run_dir: str) -> dict[str, float]:
  """A finished run's final metrics per split (`eval/accuracy`, `train/loss`...) from its summary.json."""
  final = (read_summary(run_dir) or {}).get("final") or {}
  return {
    f"{split}/{k}": float(v)
    for split, values in final.items()
    if isinstance(values, dict)
    for k, v in values.items()
    if isinstance(v, (int, float)) and not isinstance(v, bool)
  }


def _value(v):
  """What the plugin can show: numbers, booleans and strings; anything else as its text."""
  return v if isinstance(v, (bool, int, float, str)) else str(v)


def _write(folder: str, summaries: list[tuple[int, Summary]]) -> None:
  os.makedirs(folder, exist_ok=True)
  for old in glob.glob(os.path.join(folder, f"*tfevents*{SUFFIX}")):
    os.remove(old)
  writer = EventsWriter(os.path.join(folder, "events"), filename_suffix=SUFFIX)
  for step, summary in summaries:
    writer.write_event(Event(wall_time=time.time(), step=step, summary=summary))
  writer.close()


def write_session(run_dir: str, hparams: dict, finals: dict[str, float | None], status: str = "completed") -> None:
  """One session in `run_dir/tb`: its hyperparameters, its final metrics (`hparams/<name>`) and its status."""
  values = {k: _value(v) for k, v in hparams.items() if v is not None}
  _, start, end = tb_summary.hparams(values, {})
  end.value[0].metadata.plugin_data.content = _end_content(status)
  scalars = Summary(
    value=[Summary.Value(tag=METRIC_PREFIX + k, simple_value=float(v)) for k, v in finals.items() if v is not None]
  )
  _write(os.path.join(run_dir, "tb"), [(0, start), (0, scalars), (0, end)])


def _end_content(status: str) -> bytes:
  info = SessionEndInfo(status=Status.Value(STATUS.get(status, "STATUS_UNKNOWN")))
  return HParamsPluginData(session_end_info=info, version=0).SerializeToString()


def write_experiment(workdir: str, hparams: dict, metrics: list[str]) -> None:
  """The study's experiment in `workdir/tb`: the hyperparameter names (typed by the values in `hparams`, one
  example session's) and the metrics every session reports."""
  values = {k: _value(v) for k, v in hparams.items() if v is not None}
  experiment, _, _ = tb_summary.hparams(values, {METRIC_PREFIX + m: 0.0 for m in metrics})
  _write(os.path.join(workdir, "tb"), [(0, experiment)])


def write_study(workdir: str, sessions: list[dict], metrics: list[str]) -> None:
  """Every session (`{"run_dir", "hparams", "finals", "status"}`) and the experiment naming their union of
  hyperparameters and of metrics (`metrics` first: the study's own, shown first in the table)."""
  union: dict = {}
  metrics = list(dict.fromkeys([*metrics, *(k for s in sessions for k in s["finals"])]))
  for s in sessions:
    write_session(s["run_dir"], s["hparams"], s["finals"], s.get("status", "completed"))
    for k, v in s["hparams"].items():
      union.setdefault(k, v)
  if sessions:
    write_experiment(workdir, union, metrics)
