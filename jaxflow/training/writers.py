"""One writer for metrics.jsonl and TensorBoard (tensorboardX), so both always hold the same numbers.

TensorBoard events are written synchronously with tensorboardX's `EventsWriter` (a buffered append to
the event file, flushed every few seconds and at close), not through `SummaryWriter`: that one pickles
every event through a multiprocessing queue to a feeder thread and a writer thread. On a 2-core machine
those threads take their CPU from the training program running alongside; for the digits MLP the
queue cost more per epoch than building the records. The events are the same protobufs
(`tensorboardX.summary.scalar/histogram_raw/image`), read back by TensorBoard's own reader in the tests.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import time

import jax
import numpy as np
from tensorboardX import summary as tb_summary
from tensorboardX.event_file_writer import EventsWriter
from tensorboardX.proto.event_pb2 import Event, SessionLog
from tensorboardX.proto.summary_pb2 import Summary

from jaxflow.config import ConfigError
from jaxflow.training.confusion_image import confusion_image
from jaxflow.workdir import read_metrics, write_text


def _truncate_jsonl(path: str, last_step: int) -> None:
  """Drops records after `last_step` (and a partial last line, from a process killed mid-write): a resumed
  run writes them again, and must not log them twice. Rewritten atomically."""
  if not os.path.exists(path):
    return
  kept = [json.dumps(r) + "\n" for r in read_metrics(os.path.dirname(path)) if r.get("step", 0) <= last_step]
  write_text(path, "".join(kept))


def _start_afresh(jsonl_path: str, tb_dir: str) -> None:
  """A run starting from step 0 (no checkpoint restored): what an interrupted earlier attempt logged goes,
  so the new run's records are the only ones."""
  if os.path.exists(jsonl_path):
    os.remove(jsonl_path)
  if os.path.isdir(tb_dir):
    shutil.rmtree(tb_dir)


def param_name(path) -> str:
  """A parameter's tree path as TensorBoard and the checkpoints' readers name it: `dense_0/kernel`."""
  return "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)


def _local(params):
  """Arrays this process can read: a replicated array spanning several processes' devices (a multi-host run's
  parameters) is read from its copy on this process's first device; device_get of the whole would fail."""

  def local(a):
    if isinstance(a, jax.Array) and not a.is_fully_addressable and a.sharding.is_fully_replicated:
      return a.addressable_data(0)
    return a

  return jax.tree.map(local, params)


class MetricWriter:
  """`write(step, epoch, split, metrics)` appends a JSON line and TensorBoard scalars `split/name`.

  `resume_step`: the step a resumed run restarts from; later records of the interrupted run are dropped
  from the JSONL file and purged from TensorBoard's view (tensorboardX `purge_step`). None: the run starts
  from step 0, and whatever an earlier attempt logged is removed.
  """

  def __init__(self, workdir: str, *, resume_step: int | None = None, flush_secs: float = 5.0):
    self._jsonl_path = os.path.join(workdir, "metrics.jsonl")
    tb_dir = os.path.join(workdir, "tb")
    try:
      if resume_step is None:
        _start_afresh(self._jsonl_path, tb_dir)
      else:
        _truncate_jsonl(self._jsonl_path, resume_step)
      self._jsonl = open(self._jsonl_path, "a")
      os.makedirs(tb_dir, exist_ok=True)
      # The file name holds the second it was made in; a resumed run's writer can start within the same
      # second as the last one, and the same name would truncate that file. The nanosecond suffix keeps the
      # names apart, in the order TensorBoard must read them (by name) for the purge below to apply.
      self._events = EventsWriter(os.path.join(tb_dir, "events"), filename_suffix=f".{time.time_ns()}")
    except OSError as e:  # tb/ a file, metrics.jsonl a folder, a full disk: before any training, nothing lost
      misplaced = e.errno in (errno.EEXIST, errno.EISDIR, errno.ENOTDIR)
      hint = "metrics.jsonl must be a file and tb/ a folder: move what is there away, or use another --workdir"
      raise ConfigError(
        f"workdir {workdir}: cannot write its logs ({e.strerror or e}: {e.filename})"
        + (f"; {hint}" if misplaced else "; fix the cause (space, permissions) and rerun the same command")
      ) from None
    self._flush_secs, self._last_flush = flush_secs, time.monotonic()
    if resume_step is not None:
      # What SummaryWriter(purge_step=...) writes: TensorBoard drops the earlier events at later steps.
      self._events.write_event(
        Event(wall_time=time.time(), step=resume_step + 1, session_log=SessionLog(status=SessionLog.START))
      )

  def _add(self, step: int, summary: Summary) -> None:
    self._events.write_event(Event(wall_time=time.time(), step=int(step), summary=summary))

  def flush(self, *, force: bool = False) -> None:
    """metrics.jsonl to disk, and TensorBoard's file when `flush_secs` have passed (or `force`).

    The loop calls this once per epoch and forces it before each checkpoint, so a run killed after a
    checkpoint has every record up to it on disk (a resumed run truncates what came later).
    """
    self._jsonl.flush()
    if force or time.monotonic() - self._last_flush >= self._flush_secs:
      self._events.flush()
      self._last_flush = time.monotonic()

  def write(self, step: int, epoch: int, split: str, metrics: dict[str, float], *, details: dict | None = None) -> None:
    """`metrics`: scalars, to both. `details`: JSON-able structures (per-class lists, a confusion matrix)
    for metrics.jsonl only, under their own keys."""
    record = {
      "step": int(step),
      "epoch": int(epoch),
      "split": split,
      **{k: float(v) for k, v in metrics.items()},
      **(details or {}),
    }
    self._jsonl.write(json.dumps(record) + "\n")
    self._add_scalars(step, {f"{split}/{name}": value for name, value in metrics.items()})

  def _add_scalars(self, step: int, scalars: dict[str, float]) -> None:
    """All of a record's scalars as one TensorBoard event (one Summary with a value per tag).

    TensorBoard reads each tag exactly as if it came from its own `add_scalar` call (a `simple_value`,
    what `tensorboardX.summary.scalar` builds too), and one event is one serialization and one record
    instead of one per tag.
    """
    self._add(
      step, Summary(value=[Summary.Value(tag=tag, simple_value=float(value)) for tag, value in scalars.items()])
    )

  def write_histograms(self, step: int, params, *, bins: int = 64) -> None:
    """One histogram per parameter array, named by its path (e.g. `params/dense_0/kernel`), as one event.

    Binned here (`histogram`) and written raw: tensorboardX's own add_histogram took 37 ms per epoch for
    the digits MLP's six arrays (more than the epoch's training), this takes well under 1 ms.
    Non-finite values are left out; a diagnostic must never stop a run.
    """
    summaries = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(jax.device_get(_local(params)))[0]:
      stats = histogram(np.asarray(leaf).ravel(), bins)
      if stats is not None:
        summaries.append(tb_summary.histogram_raw(f"params/{param_name(path)}", **stats))
    if summaries:
      self._add(step, Summary(value=[v for summary in summaries for v in summary.value]))

  def write_class_report(
    self, step: int, confusion: np.ndarray, report: dict, *, split: str = "eval", class_names=None
  ) -> None:
    """Per-class precision/recall/F1 as TensorBoard scalars (`eval/recall/class_3`, or `eval/recall/circle`
    when the class has a name of its own) and the confusion matrix as an image (`eval/confusion_matrix`,
    the names along its axes): the view where a rare class's collapse shows."""
    tags = class_tags(class_names, len(report["recall"]))
    self._add_scalars(
      step,
      {f"{split}/{name}/{tags[c]}": v for name in ("precision", "recall", "f1") for c, v in enumerate(report[name])},
    )
    image = confusion_image(confusion, class_names=class_names)
    self._add(step, tb_summary.image(f"{split}/confusion_matrix", image, dataformats="HWC"))

  def close(self) -> None:
    self._jsonl.close()
    self._events.close()


def class_tags(class_names, count: int) -> list[str]:
  """A TensorBoard tag part per class: its name (spaces and slashes replaced), or `class_i` when the name is
  just its index (the digits) or there is none."""
  names = list(class_names) if class_names else [str(i) for i in range(count)]
  return [f"class_{i}" if name == str(i) else re.sub(r"[\s/]+", "_", name) for i, name in enumerate(names)]


def histogram(values: np.ndarray, bins: int) -> dict | None:
  """TensorBoard's raw histogram fields of the finite `values` (None when there are none).

  Equal-width bins between min and max, as np.histogram draws them (a constant array gets the range
  value +- 0.5), counted with one multiply and a bincount: ~9x faster than np.histogram on a 256x256
  kernel, which matters because it runs on the host beside a training program sharing its CPU cores.
  """
  if values.size and not np.isfinite(values).all():
    values = values[np.isfinite(values)]
  if values.size == 0:
    return None
  lo, hi = float(values.min()), float(values.max())
  first, last = (lo - 0.5, hi + 0.5) if lo == hi else (lo, hi)
  index = ((values - first) * (bins / (last - first))).astype(np.int64)
  counts = np.bincount(np.clip(index, 0, bins - 1), minlength=bins)
  wide = values.astype(np.float64)
  return {
    "min": lo,
    "max": hi,
    "num": int(values.size),
    "sum": float(wide.sum()),
    # Not `wide @ wide`: a BLAS call wakes OpenBLAS's threads, which then spin on the cores XLA is training on
    # (histograms every 10 epochs cut the digits MLP's rate by 15-20%; OPENBLAS_NUM_THREADS=1 took it all back).
    "sum_squares": float(np.einsum("i,i->", wide, wide)),
    "bucket_limits": np.linspace(first, last, bins + 1)[1:].tolist(),
    "bucket_counts": counts.tolist(),
  }


class NullWriter:
  """MetricWriter's interface, writing nothing: every process of a multi-host job but the first."""

  def write(self, *args, **kwargs) -> None:
    pass

  write_histograms = write_class_report = flush = write

  def close(self) -> None:
    pass
