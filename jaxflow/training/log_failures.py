"""A run's logs that cannot be written (a full disk, a file-size limit): one line, the last checkpoint kept.

Only process 0 writes a run's logs (metrics.jsonl, TensorBoard). A failure there used to end process 0 with a
traceback while the others went on to their next collective and waited for it until killed. `KeepingWriter`
turns any OSError of the writer into one `LogsFailed`: raised at once in a one-process run; with several
processes kept (and every later write skipped) until the run's epoch records are written, where `agreed`
(RunBook.end_epoch) shares it with every process before the epoch's checkpoint, so they all stop together and a
rerun resumes before the records that are missing.
"""

from __future__ import annotations

import jax

from jaxflow import workdir as workdir_files
from jaxflow.training import parallel


class LogsFailed(RuntimeError):
  """Writing a run's logs failed; the run stopped with its last checkpoint kept. The CLI prints the message
  as one line and exits with `exit_status`."""

  exit_status = 1


class KeepingWriter:
  """A MetricWriter whose failures become one LogsFailed: raised at once, or with `defer` kept in `failure`."""

  def __init__(self, writer, workdir: str, *, defer: bool):
    self._writer, self.workdir, self.defer = writer, workdir, defer
    self.failure: LogsFailed | None = None

  def _guard(self, name: str, *args, **kwargs) -> None:
    if self.failure is not None:
      return
    try:
      getattr(self._writer, name)(*args, **kwargs)
    except OSError as e:
      self.failure = _failed(self.workdir, "its logs", e)
      if not self.defer:
        raise self.failure from None

  def write(self, *args, **kwargs) -> None:
    self._guard("write", *args, **kwargs)

  def write_histograms(self, *args, **kwargs) -> None:
    self._guard("write_histograms", *args, **kwargs)

  def write_class_report(self, *args, **kwargs) -> None:
    self._guard("write_class_report", *args, **kwargs)

  def flush(self, *args, **kwargs) -> None:
    self._guard("flush", *args, **kwargs)

  def close(self) -> None:
    try:
      self._writer.close()
    except OSError as e:  # a failure already kept was said (or will be); a new one is said here, in one line
      if self.failure is None:
        raise _failed(self.workdir, "its logs", e) from None


def _failed(workdir: str, what: str, error: OSError) -> LogsFailed:
  return LogsFailed(
    f"workdir {workdir}: writing {what} failed ({error.strerror or error}); the run stopped, its checkpoints as "
    "they were: rerun the same command to resume once the cause is fixed"
  )


def write_summary(workdir: str, summary: dict) -> None:
  """summary.json, or one LogsFailed line when it cannot be written (a full disk)."""
  try:
    workdir_files.write_summary(workdir, summary)
  except OSError as e:
    raise _failed(workdir, "summary.json", e) from None


def agreed(writers) -> None:
  """Several processes, at an epoch's end: a log failure of any process stops every one (its own LogsFailed
  where it happened, the others one naming process 0). One process: nothing to share (raised at once)."""
  if not parallel.several_processes():
    return
  failures = [w.failure for w in writers if getattr(w, "failure", None) is not None]
  if parallel.true_everywhere(not failures):
    return
  if failures:
    raise failures[0]
  raise LogsFailed(
    f"process 0 failed to write the logs (its error says why); process {jax.process_index()} stops with it, the "
    "checkpoints as they were"
  )
