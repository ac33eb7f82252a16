"""A dataset with one split gets a stratified, fixed held-out split; tabular features are standardized with
training statistics, stored in the run and replayed by the exported model."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest
from sklearn.datasets import load_wine

import jaxflow
import jaxflow.workdir
from jaxflow import cli, rng
from jaxflow.data import holdout, pipeline, standardize
from tests.conftest import config_path


def write_wine(path) -> None:
  """sklearn's wine (178 rows, 13 features in their own units, 3 classes) as a CSV with string labels."""
  wine = load_wine()
  with open(path, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow([*wine.feature_names, "label"])
    for row, target in zip(wine.data, wine.target, strict=True):
      writer.writerow([*row, wine.target_names[target]])


def test_the_held_out_examples_are_stratified_fixed_and_sized_from_the_split_alone():
  labels = np.repeat(np.arange(3), [50, 30, 20])
  mask = holdout.held_out_mask(labels, 0.2)
  assert mask.sum() == holdout.sizes(100, 0.2)[1] == 20
  assert [int(mask[labels == c].sum()) for c in range(3)] == [10, 6, 4]  # 20 % of every class
  np.testing.assert_array_equal(mask, holdout.held_out_mask(labels, 0.2))  # the same every time
  assert holdout.sizes(7, 0.01) == (6, 1) and holdout.sizes(7, 0.99) == (1, 6)


def test_standardization_is_fitted_on_the_training_inputs():
  rng = np.random.default_rng(0)
  train = rng.normal([100.0, 1.0, 5.0], [30.0, 0.1, 0.0], size=(200, 3)).astype(np.float32)
  scaling = standardize.fit(train)
  scaled = scaling.apply(train)
  np.testing.assert_allclose(scaled[:, :2].mean(0), 0, atol=1e-4)
  np.testing.assert_allclose(scaled[:, :2].std(0), 1, atol=1e-4)
  assert scaling.std[2] == 1.0 and np.allclose(scaled[:, 2], 0)  # a constant feature is only centred


@pytest.mark.slow
def test_wine_with_the_readme_command_trains_standardized_on_a_held_out_split(tmp_path, capsys):
  """The README's CSV command and no other flag: one split, so 20 % is held out; features standardized."""
  write_wine(tmp_path / "wine.csv")
  workdir = tmp_path / "wine"
  args = [f"--config={config_path('digits_mlp.py')}", f"--config.data.name=csv:{tmp_path / 'wine.csv'}"]
  code = cli.main(["jaxflow", "train", *args, "--config.data.input_feature=features", f"--workdir={workdir}"])
  out, err = capsys.readouterr()
  assert code == 0, err
  summary = json.loads((workdir / "summary.json").read_text())
  assert summary["final"]["eval"]["accuracy"] >= 0.9
  assert summary["holdout"]["held_out_examples"] == 36 and summary["holdout"]["train_examples"] == 142
  (line,) = [line for line in err.splitlines() if "held out for evaluation" in line]
  assert "36 of its 178 examples (20%, stratified by class" in line
  stored = json.loads((workdir / standardize.FILE).read_text())
  config = jaxflow.workdir.read_config(str(workdir))
  train, held_out = pipeline.load_splits(config, rng.streams(config)["data"])
  assert (train.inputs.shape[0], held_out.inputs.shape[0]) == (142, 36)
  np.testing.assert_allclose(stored["mean"], train.inputs.mean(0), rtol=1e-5)  # the training rows only
  assert not np.allclose(stored["mean"], load_wine().data.mean(0), rtol=1e-4)  # not all 178 rows
  # The exported model replays the scaling: raw CSV values in, the training code's answers out.
  from jaxflow.inspect import trained_run

  run = trained_run.load_run(str(workdir), randomize=False)
  assert run.problem.feature_names[:2] == ("alcohol", "malic_acid")  # explain labels the feature bars with these
  assert run.problem.class_names == ("class_0", "class_1", "class_2")
  card = jaxflow.export(str(workdir), str(tmp_path / "model"))
  assert card["input"]["preprocessing"]["standardize"]["mean"] == stored["mean"]
  assert card["evaluation"]["artifact"]["value"] == pytest.approx(summary["final"]["eval"]["accuracy"], abs=1e-6)


def test_one_split_and_no_holdout_is_one_line_with_the_slice_hint(tmp_path, capsys):
  write_wine(tmp_path / "wine.csv")
  code = cli.main(
    [
      "jaxflow",
      "train",
      f"--config={config_path('digits_mlp.py')}",
      f"--config.data.name=csv:{tmp_path / 'wine.csv'}",
      "--config.data.input_feature=features",
      "--config.data.holdout=0",
      f"--workdir={tmp_path / 'run'}",
    ]
  )
  err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("jaxflow: preparing")]
  assert code == 2 and len(err) == 1 and not os.path.exists(tmp_path / "run")
  assert "'train[:80%]' / 'train[80%:]'" in err[0] and "data.holdout > 0" in err[0]


@pytest.mark.slow
def test_class_names_travel_from_a_folder_into_the_records_tensorboard_and_captions(tmp_path):
  """circle/square sub-folders: their names, not 0/1, in summary.json, metrics.jsonl and TensorBoard tags."""
  from PIL import Image
  from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

  rng_images = np.random.default_rng(0)
  for name, level in (("circle", 40), ("square", 200)):
    os.makedirs(tmp_path / "shapes" / name)
    for i in range(20):
      pixels = np.clip(rng_images.normal(level, 20, (8, 8)), 0, 255).astype(np.uint8)
      Image.fromarray(pixels).save(tmp_path / "shapes" / name / f"{i}.png")
  workdir = str(tmp_path / "run")
  config = jaxflow.load_config(
    config_path("digits_mlp.py"),
    [f"data.name=folder:{tmp_path / 'shapes'}", "train.batch_size=8", "train.epochs=2", "model.widths=(16,)"],
  )
  summary = jaxflow.train(config, workdir, quiet=True)
  assert summary["final"]["class_names"] == ["circle", "square"]
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    evals = [r for r in map(json.loads, f) if r["split"] == "eval"]
  assert all(r["class_names"] == ["circle", "square"] for r in evals)
  events = EventAccumulator(os.path.join(workdir, "tb"))
  events.Reload()
  assert {"eval/recall/circle", "eval/recall/square"} <= set(events.Tags()["scalars"])
  from jaxflow.inspect import trained_run

  chosen = trained_run.choose_examples(trained_run.load_run(workdir, randomize=False), 4)
  assert all(" y=circle " in f" {c} " or " y=square " in f" {c} " for c in chosen.captions)


def test_the_holdout_with_a_class_subset_and_an_explicit_slice(tmp_path):
  """Sizes of a held-out split after data.classes come from the held-out split itself; a slice the user
  wrote is theirs and is never replaced by the holdout."""
  from jaxflow.run.assemble import problem_of

  write_wine(tmp_path / "wine.csv")
  base = [f"data.name=csv:{tmp_path / 'wine.csv'}", "data.input_feature=features", "train.batch_size=16"]
  subset = problem_of(jaxflow.load_config(config_path("digits_mlp.py"), [*base, "data.classes=(0, 1)"]))
  labels = load_wine().target
  held = holdout.held_out_mask(labels, 0.2)  # the stored order of a CSV without a split column is a fixed shuffle,
  assert subset.train_size + subset.eval_size == int(np.isin(labels, (0, 1)).sum())  # but the counts do not move
  sliced = problem_of(jaxflow.load_config(config_path("digits_mlp.py"), [*base, "data.eval_split=train[90%:]"]))
  assert sliced.eval_size == 18 and held.sum() == 36


@pytest.mark.slow
def test_predict_reads_the_training_csv_by_its_column_names(tmp_path, capsys):
  write_wine(tmp_path / "wine.csv")
  workdir, model = str(tmp_path / "run"), str(tmp_path / "model")
  config = jaxflow.load_config(
    config_path("digits_mlp.py"),
    [f"data.name=csv:{tmp_path / 'wine.csv'}", "data.input_feature=features", "train.epochs=2"],
  )
  jaxflow.train(config, workdir, quiet=True)
  card = jaxflow.export(workdir, model)
  assert card["input"]["feature_names"][0] == "alcohol"
  # The label column last in the training file; the same columns shuffled in another: the same predictions.
  from jaxflow.deploy.predict import predict_files

  rows = predict_files(model, [str(tmp_path / "wine.csv")])
  with open(tmp_path / "wine.csv") as f:
    table = list(csv.reader(f))
  order = [table[0].index("label"), *reversed(range(len(table[0]) - 1))]
  with open(tmp_path / "shuffled.csv", "w", newline="") as f:
    csv.writer(f).writerows([[r[i] for i in order] for r in table])
  shuffled = predict_files(model, [str(tmp_path / "shuffled.csv")])
  assert len(rows) == 178 and [r["probabilities"] for r in rows] == [r["probabilities"] for r in shuffled]


def test_a_run_recorded_before_holdout_and_standardize_existed_keeps_its_meaning():
  """config.json of an older run lacks data.holdout and data.standardize: no holdout, no scaling (as trained)."""
  import ml_collections

  old = ml_collections.ConfigDict({"name": "csv:x.csv", "eval_split": "test", "train_split": "train"})
  spec = type("Spec", (), {"split_sizes": {"train": 10}})()
  assert not holdout.applies(old, spec, stored=True)
  assert not standardize.wanted(old, (13,))
  old.standardize, old.holdout = None, 0.2  # the same config as written today
  assert holdout.applies(old, spec, stored=True) and standardize.wanted(old, (13,))
