"""MetricWriter's pieces, read back the way a user would: TensorBoard's own event reader, PIL for images."""

import json
import os

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator

from jaxflow.training import confusion_image as images
from jaxflow.training import writers


def _accumulator(workdir):
  acc = event_accumulator.EventAccumulator(
    os.path.join(workdir, "tb"),
    size_guidance={event_accumulator.SCALARS: 0, event_accumulator.HISTOGRAMS: 0, event_accumulator.IMAGES: 0},
  )
  acc.Reload()
  return acc


@pytest.mark.parametrize(
  "values",
  [
    np.random.RandomState(0).randn(5000).astype(np.float32),
    np.full(7, 3.0, np.float32),  # constant: np.histogram's range value +- 0.5
    np.array([1.0, np.nan, 3.0, np.inf, -2.0], np.float32),
  ],
)
def test_histogram_matches_numpy(values):
  finite = values[np.isfinite(values)]
  counts, edges = np.histogram(finite, bins=16)
  h = writers.histogram(values, 16)
  assert h["bucket_counts"] == counts.tolist()
  np.testing.assert_allclose(h["bucket_limits"], edges[1:], rtol=1e-6)
  assert (h["min"], h["max"], h["num"]) == (finite.min(), finite.max(), finite.size)
  assert h["sum"] == pytest.approx(float(finite.sum()), rel=1e-6)
  assert h["sum_squares"] == pytest.approx(float(np.square(finite.astype(np.float64)).sum()), rel=1e-6)


def test_histogram_of_nothing_finite_is_skipped():
  assert writers.histogram(np.array([np.nan, np.inf]), 8) is None


def test_records_reach_jsonl_and_tensorboard(tmp_path):
  workdir = str(tmp_path)
  writer = writers.MetricWriter(workdir)
  writer.write(5, 1, "train", {"loss": 0.5, "accuracy": 0.25})
  writer.write(10, 2, "eval", {"loss": 0.4, "accuracy": 0.75}, details={"confusion": [[1, 0], [2, 3]]})
  writer.write_histograms(10, {"dense": {"kernel": np.arange(12.0).reshape(3, 4)}})
  writer.close()
  records = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
  assert records[1] == {
    "step": 10,
    "epoch": 2,
    "split": "eval",
    "loss": 0.4,
    "accuracy": 0.75,
    "confusion": [[1, 0], [2, 3]],
  }
  acc = _accumulator(workdir)
  assert [(e.step, e.value) for e in acc.Scalars("train/loss")] == [(5, 0.5)]
  assert [(e.step, e.value) for e in acc.Scalars("eval/accuracy")] == [(10, 0.75)]
  (hist,) = acc.Histograms("params/dense/kernel")
  assert hist.step == 10 and hist.histogram_value.num == 12 and hist.histogram_value.max == 11.0


def test_resumed_writer_drops_the_interrupted_run_tail(tmp_path):
  """A resumed run rewrites the steps after its checkpoint: neither file may show them twice."""
  workdir = str(tmp_path)
  first = writers.MetricWriter(workdir)
  for step in (10, 20, 30):
    first.write(step, step // 10, "eval", {"loss": float(step)})
  first.close()
  resumed = writers.MetricWriter(workdir, resume_step=20)
  resumed.write(30, 3, "eval", {"loss": -1.0})
  resumed.close()
  steps = [json.loads(line)["step"] for line in open(os.path.join(workdir, "metrics.jsonl"))]
  assert steps == [10, 20, 30]
  assert [(e.step, e.value) for e in _accumulator(workdir).Scalars("eval/loss")] == [(10, 10.0), (20, 20.0), (30, -1.0)]


def test_flush_puts_records_on_disk_before_close(tmp_path):
  """What a SIGKILL after a checkpoint leaves: the loop forces a flush before every save."""
  workdir = str(tmp_path)
  writer = writers.MetricWriter(workdir, flush_secs=3600)
  writer.write(1, 1, "eval", {"loss": 1.0})
  writer.flush(force=True)
  assert len(open(os.path.join(workdir, "metrics.jsonl")).readlines()) == 1
  assert [e.step for e in _accumulator(workdir).Scalars("eval/loss")] == [1]
  writer.close()


def test_confusion_image_colours_cells_by_recall():
  confusion = np.array([[9, 1, 0], [5, 5, 0], [0, 0, 0]])  # class 2 absent: its row stays white
  picture = images.confusion_image(confusion, cell=20)
  margin = 5 * 2 + 8
  assert picture.dtype == np.uint8 and picture.shape == (margin + 60, margin + 60, 3)

  def corner(i, j):  # a pixel inside the cell, clear of the border and of the digits
    return picture[margin + i * 20 + 2, margin + j * 20 + 2].astype(int)

  assert corner(0, 0).sum() < corner(1, 1).sum() < corner(0, 1).sum()  # 0.9 darker than 0.5, than 0.1
  assert tuple(corner(2, 2)) == (247, 251, 255)  # the lightest blue: share 0
  centre = picture[margin + 10 - 5 : margin + 10 + 5, margin + 10 - 3 : margin + 10 + 3]
  assert (centre == 255).all(axis=-1).any()  # the count "9" is written in white on the dark cell


def test_confusion_image_writes_every_count():
  """Each cell holds its count in the bitmap font: the ink of '10' is the ink of '1' plus '0'."""
  ink = lambda text: int(images._text_mask(text, 1).sum())  # noqa: E731
  assert ink("10") == ink("1") + ink("0")
  assert images._text_mask("123", 2).shape == (10, 22)
