"""Trained runs and their exports, made once per test session and shared by the deploy tests.

A small digits CNN (the image path: uint8 pixels, /255 in the program) and a small digits MLP, a few
epochs each, exported as f32. Tests that need another precision or an ensemble export from these runs.
"""

from __future__ import annotations

import pytest

import jaxflow
from tests.conftest import config_path

CNN = ["model.conv_features=(8,)", "model.widths=(16,)", "train.epochs=3", "train.histogram_every=1000"]
MLP = ["model.widths=(32,)", "train.epochs=3", "train.histogram_every=1000"]


@pytest.fixture(scope="session")
def cnn_run(tmp_path_factory) -> str:
  workdir = str(tmp_path_factory.mktemp("deploy") / "cnn")
  jaxflow.train(jaxflow.load_config(config_path("digits_cnn.py"), CNN), workdir, quiet=True)
  return workdir


@pytest.fixture(scope="session")
def mlp_run(tmp_path_factory) -> str:
  workdir = str(tmp_path_factory.mktemp("deploy") / "mlp")
  jaxflow.train(jaxflow.load_config(config_path("digits_mlp.py"), MLP), workdir, quiet=True)
  return workdir


@pytest.fixture(scope="session")
def cnn_model(cnn_run, tmp_path_factory) -> str:
  """The CNN run exported (f32): the folder `jaxflow.load_model` and `--model=` take."""
  from jaxflow.deploy.export import export_run

  out = str(tmp_path_factory.mktemp("deploy_models") / "cnn")
  export_run(cnn_run, out)
  return out


@pytest.fixture(scope="session")
def mlp_model(mlp_run, tmp_path_factory) -> str:
  from jaxflow.deploy.export import export_run

  out = str(tmp_path_factory.mktemp("deploy_models") / "mlp")
  export_run(mlp_run, out)
  return out
