"""One place assembles a run: the same problem, streams, data and programs for every caller."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import jaxflow
from jaxflow import rng
from jaxflow.data.device import DeviceData
from jaxflow.data.pipeline import PreparedData
from jaxflow.run import assemble
from jaxflow.run.validate import check_layout
from tests.conftest import config_path, merge_overrides

TINY = ["train.epochs=1", "model.widths=(16,)", "train.batch_size=64"]


def digits(*overrides):
  return jaxflow.load_config(config_path("digits_mlp.py"), merge_overrides(*TINY, *overrides))


def test_an_assembled_run_has_every_part():
  compiled = assemble.Compiled()
  run = assemble.assemble([digits()], compiled=compiled)
  assert run.size == 1 and not run.on_host and isinstance(run.data, DeviceData)
  assert run.problem.train_size == 1437 and run.parts.steps_per_epoch == 1437 // 64
  assert run.data.train_inputs.shape == (1437, 8, 8, 1)
  assert int(run.state.step) == 0
  assert compiled.problem[1] is run.problem  # validated once, reused by the next run of this static config
  np.testing.assert_array_equal(
    jax.random.key_data(run.streams["init"]), jax.random.key_data(rng.streams(digits())["init"])
  )


def test_runs_sharing_their_data_streams_share_one_copy():
  compiled = assemble.Compiled()
  configs = [digits(f"seeds.init={i}") for i in range(3)]
  run = assemble.assemble(configs, compiled=compiled)
  assert run.size == 3 and run.per_run_data[0] is run.per_run_data[2]
  assert run.data.train_inputs.shape == (1437, 8, 8, 1)  # not stacked: one copy on the device
  assert jax.tree.leaves(run.state.params)[0].shape[0] == 3


def test_skewed_runs_get_their_own_data_stacked():
  configs = [digits("data.imbalance_ratio=10", f"seeds.data={i}") for i in range(2)]
  run = assemble.assemble(configs)
  assert run.per_run_data[0] is not run.per_run_data[1]
  assert run.data.train_labels.shape[0] == 2  # [runs, n]


def test_host_data_is_what_training_sees():
  config = digits("data.imbalance_ratio=10")
  problem = assemble.problem_of(config)
  prepared = assemble.host_data(config, problem, rng.streams(config))
  data = assemble.device_data(config, problem, rng.streams(config))
  assert isinstance(prepared, PreparedData) and prepared.train_targets.shape[0] == problem.train_size
  np.testing.assert_array_equal(np.asarray(data.train_labels), prepared.train_targets)


def test_compile_keys_ignore_seeds_and_group_keys_ignore_runtime_hyperparameters():
  a, b = digits("seed=1"), digits("seed=2", "seeds.init=5")
  assert assemble.static_key(a) == assemble.static_key(b)
  c = digits("optim.lr=0.5", "model.dropout_rate=0.2")
  assert assemble.static_key(a) != assemble.static_key(c) and assemble.group_key(a) == assemble.group_key(c)
  assert assemble.group_key(a) != assemble.group_key(digits("model.widths=(8,)"))


def test_graph_runs_are_assembled_on_the_host():
  config = jaxflow.load_config(config_path("karate_gcn.py"), ["train.epochs=1"])
  run = assemble.assemble([config])
  assert run.on_host and run.parts.steps_per_epoch == 1 and run.parts.per_dispatch == 1


@pytest.mark.parametrize("mode", ["pmap", "sharded"])
def test_graph_datasets_refuse_data_parallel_layouts(mode):
  config = jaxflow.load_config(config_path("karate_gcn.py"), [f"parallel.mode={mode}"])
  with pytest.raises(jaxflow.ConfigError, match="not supported for graph datasets"):
    check_layout(config, assemble.problem_of(config))
