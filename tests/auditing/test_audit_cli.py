"""`jaxflow audit` end to end: a small CSV with a planted day/night bias and planted duplicates (one
leaking into the test split), audited through the CLI; the report names both, in every format."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest

import jaxflow
from jaxflow import cli
from tests.conftest import config_path

NUM_FEATURES = 12


def write_planted_csv(path: str) -> dict:
  """240 train / 80 test rows, 3 classes. `daylight` is 'day' for class 0 and 'night' otherwise except
  for every 8th row (a strong sample bias); `camera` is random. Train rows 5 and 6 copy row 4 (one
  exact group within train), test row 3 copies train row 10 (leakage)."""
  rng = np.random.default_rng(0)
  rows = []
  for split, n in (("train", 240), ("test", 80)):
    labels = np.arange(n) % 3
    x = rng.normal(size=(n, NUM_FEATURES)) + labels[:, None]
    day = (labels == 0) ^ (np.arange(n) % 8 == 0)
    rows += [
      {
        "split": split,
        "label": int(y),
        "daylight": "day" if d else "night",
        "camera": f"cam{rng.integers(3)}",
        **{f"f{i}": float(v) for i, v in enumerate(x_row)},
      }
      for x_row, y, d in zip(x, labels, day)
    ]
  train, test = rows[:240], rows[240:]
  for i in (5, 6):
    train[i] = {**train[4], "daylight": train[i]["daylight"], "camera": train[i]["camera"]}
  test[3] = {**train[10], "split": "test"}
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(train + test)
  return {"leaked_train_row": 10}


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
  folder = tmp_path_factory.mktemp("planted")
  source = str(folder / "planted.csv")
  write_planted_csv(source)
  workdir = str(folder / "audit")
  argv = [
    "jaxflow",
    "audit",
    f"--config={config_path('digits_mlp.py')}",
    f"--config.data.name=csv:{source}",
    "--config.data.input_feature=features",
    "--config.data.metadata_features=('daylight', 'camera')",
    f"--workdir={workdir}",
  ]
  assert cli.main(argv) == 0
  with open(os.path.join(workdir, "report.json")) as f:
    return workdir, json.load(f)


def test_report_files_are_written(audited):
  workdir, _ = audited
  assert {"report.json", "report.md", "config.json", "plots"} <= set(os.listdir(workdir))
  pngs = [p for p in os.listdir(os.path.join(workdir, "plots")) if p.endswith(".png")]
  assert pngs and all(open(os.path.join(workdir, "plots", p), "rb").read(8) == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_planted_bias_is_flagged_and_the_random_attribute_is_not(audited):
  """Each attribute's train table is the planted CSV counted here (rows: the attribute's values in sorted
  order, columns: classes 0-2), its chi-square is scipy's on that table, and only daylight is flagged:
  daylight's V ~0.72 is far above the 0.3 threshold, camera's chi-square (p ~0.6) is that of random draws."""
  from scipy.stats import chi2_contingency

  workdir, report = audited
  with open(os.path.join(os.path.dirname(workdir), "planted.csv")) as f:
    train = [row for row in csv.DictReader(f) if row["split"] == "train"]
  attributes = report["attribute_bias"]["attributes"]
  for name, flagged in (("daylight", True), ("camera", False)):
    values = sorted({row[name] for row in train})
    table = [[sum(r[name] == v and int(r["label"]) == c for r in train) for c in range(3)] for v in values]
    split = attributes[name]["splits"]["train"]
    assert attributes[name]["values"] == values and split["table"] == table, name
    assert split["chi2"] == pytest.approx(chi2_contingency(np.array(table), correction=False).statistic, rel=1e-9)
    assert split["flagged"] is flagged and attributes[name]["flagged"] is flagged, name
    assert (split["cramers_v"] >= 0.3) is flagged
  findings = " ".join(report["summary"]["findings"])
  assert "daylight" in findings and "camera" not in findings


def test_planted_duplicates_and_leakage_are_found(audited):
  workdir, report = audited
  findings = report["summary"]["findings"]
  assert "1 'test' example (1.2%) exactly copied from 'train': leakage between splits" in findings
  assert "split 'train' holds 1 group of exact duplicates (2 redundant copies)" in findings
  markdown = open(os.path.join(workdir, "report.md")).read()
  assert "daylight" in markdown
  # The examples are named by their CSV line (header = line 1; train rows 4-6 are lines 6-8, test row 3 is 245).
  (group,) = report["duplicates"]["exact"]["within"]["train"]["groups"]
  assert sorted(group["names"]) == ["line 6", "line 7", "line 8"]
  (pair,) = report["duplicates"]["exact"]["across"]["train/test"]["pairs"]
  assert (pair["name_a"], pair["name_b"]) == ("line 12", "line 245")
  assert "(line 245)" in markdown and "(line 12)" in markdown
  assert "csv_line" not in json.dumps(report["attribute_bias"])  # a name is no attribute of the class
  assert (
    report["meta"]["splits"]["train"]["num_examples"] == 240 and report["meta"]["splits"]["test"]["num_examples"] == 80
  )


def test_digits_audit_through_the_python_api(tmp_path):
  report = jaxflow.audit(jaxflow.load_config(config_path("digits_mlp.py")), str(tmp_path))
  assert report["meta"]["splits"]["train"]["num_examples"] == 1437 and report["meta"]["num_classes"] == 10
  assert report["class_balance"]


def test_bad_audit_config_is_one_line_and_writes_nothing(tmp_path, capsys):
  workdir = str(tmp_path / "never")
  code = cli.main(
    [
      "jaxflow",
      "audit",
      f"--config={config_path('digits_mlp.py')}",
      "--config.audit.cramers_v=-1",
      f"--workdir={workdir}",
    ]
  )
  err = capsys.readouterr().err.strip()
  assert code == 2 and "config.audit.cramers_v=-1" in err and "\n" not in err
  assert not os.path.exists(workdir)
