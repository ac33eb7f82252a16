"""run.train.train_group: runs that differ in seeds, lr, weight decay or dropout rate, trained as one
vmapped program, give each run what training it alone gives (to float rounding)."""

from __future__ import annotations

import pytest

import jaxflow
from jaxflow.config import ConfigError
from jaxflow.run import assemble as keys
from jaxflow.run import train as loop
from tests.conftest import config_path, latest_params, max_param_diff, merge_overrides

BASE = ["train.epochs=2", "model.widths=(32,)", "checkpoint.every_epochs=1", "train.histogram_every=1000"]
TRIALS = [
  ["optim.lr=0.003", "model.dropout_rate=0.1", "optim.weight_decay=0.0", "seeds.init=1"],
  ["optim.lr=0.01", "model.dropout_rate=0.3", "optim.weight_decay=0.001", "seeds.init=2"],
  ["optim.lr=0.001", "model.dropout_rate=0.0", "optim.weight_decay=0.01", "seeds.init=3"],
]


def test_group_key_ignores_seeds_and_runtime_hyperparameters():
  a = jaxflow.load_config(config_path("digits_mlp.py"), merge_overrides(*BASE, *TRIALS[0]))
  b = jaxflow.load_config(config_path("digits_mlp.py"), merge_overrides(*BASE, *TRIALS[1]))
  wider = jaxflow.load_config(config_path("digits_mlp.py"), merge_overrides(*BASE, "model.widths=(64,)"))
  assert keys.group_key(a) == keys.group_key(b) != keys.group_key(wider)
  assert keys.static_key(a) != keys.static_key(b)  # their programs alone would differ


@pytest.mark.slow
@pytest.mark.parametrize("optim", [["optim.name=adamw", "optim.clip_norm=1.0"], ["optim.name=momentum"]])
def test_group_with_different_hyperparameters_matches_each_run_alone(tmp_path, optim):
  configs = [jaxflow.load_config(config_path("digits_mlp.py"), merge_overrides(*BASE, *optim, *t)) for t in TRIALS]
  grouped = loop.train_group(configs, [str(tmp_path / f"g{i}") for i in range(3)], quiet=True)
  alone = [loop.train_and_evaluate(c, str(tmp_path / f"s{i}"), quiet=True) for i, c in enumerate(configs)]
  for i, (g, s) in enumerate(zip(grouped, alone)):
    assert g["group"]["runs"] == 3
    assert round(g["final"]["eval"]["accuracy"], 3) == round(s["final"]["eval"]["accuracy"], 3)
    assert g["final"]["train"]["lr"] == pytest.approx(s["final"]["train"]["lr"], rel=1e-6)  # each run logs its own lr
    assert max_param_diff(latest_params(str(tmp_path / f"g{i}")), latest_params(str(tmp_path / f"s{i}"))) <= 1e-5


def test_group_refuses_configs_that_differ_in_shape(tmp_path):
  configs = [
    jaxflow.load_config(config_path("digits_mlp.py"), merge_overrides(*BASE, f"model.widths=({w},)")) for w in (32, 64)
  ]
  with pytest.raises(loop.GroupError, match="may differ only in seed"):
    loop.train_group(configs, [str(tmp_path / "a"), str(tmp_path / "b")], quiet=True)


def test_group_checks_the_runtime_fields_of_every_run(tmp_path):
  configs = [
    jaxflow.load_config(config_path("digits_mlp.py"), merge_overrides(*BASE, f"model.dropout_rate={r}"))
    for r in (0.1, 1.5)
  ]
  with pytest.raises(ConfigError, match=r"model.dropout_rate=1.5 must be in \[0, 1\)"):
    loop.train_group(configs, [str(tmp_path / "a"), str(tmp_path / "b")], quiet=True)
