"""More README promises no other test held (issue 23, point 2): parallel.mode=auto on one and on two devices,
`jaxflow seeds --mode=devices` (its command-line success path too) against sequential mode, and tune's
objective="best" with the UCB acquisition in a real tiny study.

The 2-device half runs in one subprocess (the device count must be set before jax is imported): the
`devices` task of tests/training/parallel_worker.py.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

import jaxflow
from jaxflow.training import parallel
from tests import forkserver
from tests.conftest import ROOT, config_path, latest_params, max_param_diff

WORKER = os.path.join(ROOT, "tests", "training", "parallel_worker.py")
SEEDS_TINY = ["model.widths=(16,)", "train.epochs=1", "train.batch_size=128", "train.histogram_every=1000"]


def test_auto_is_single_on_one_device():
  """`auto`: sharded when there is more than one device, else single (here, one CPU device)."""
  layout = parallel.create_layout("auto")
  assert (layout.mode, layout.mesh, layout.num_devices) == ("single", None, 1)


@pytest.fixture(scope="module")
def two_devices(tmp_path_factory) -> dict:
  folder = tmp_path_factory.mktemp("seeds_devices")
  workdir, out, err = str(folder / "study"), str(folder / "stdout.txt"), str(folder / "stderr.txt")
  # Forked from the fork server (tests/forkserver.py): the worker sets its 2 devices before any backend exists.
  proc = forkserver.start([sys.executable, WORKER, "devices", "2", workdir], stdout=out, stderr=err)
  assert forkserver.ended(proc, 300) == 0, open(err).read()[-3000:]
  with open(out) as f:
    return {"workdir": workdir, **json.loads(f.read().strip().splitlines()[-1])}


@pytest.mark.slow
def test_auto_is_sharded_over_every_device_when_there_are_several(two_devices):
  assert two_devices["auto"] == {"mode": "sharded", "devices": 2}
  assert two_devices["auto_one"] == {"mode": "single", "devices": 1}  # parallel.num_devices=1 leaves one
  assert two_devices["run_layout"] == {"mode": "sharded", "devices": 2}  # what a run's validation resolves


@pytest.mark.slow
def test_seeds_devices_mode_spreads_the_seeds_and_matches_sequential(two_devices, tmp_path):
  """Both seeds trained as one group whose run axis is split over the 2 devices; each seed's parameters are
  those of the same seed trained alone on one device, to the rounding of a batched matmul (the vmap vs
  sequential bound of tests/seeds/test_seeds.py: 1e-5 after 11 Adam steps; measured ~1e-7 there)."""
  assert two_devices["groups"] == [{"runs": 2, "devices": [0, 1], "spec": ["seeds"]}]
  from jaxflow.seeds import study

  config = jaxflow.load_config(config_path("digits_mlp.py"), SEEDS_TINY)
  sequential = study.run_seeds(config, str(tmp_path / "seq"), seeds=2, vary="init", mode="sequential", plots=False)
  with open(os.path.join(two_devices["workdir"], "report.json")) as f:
    spread = json.load(f)
  assert spread["mode"]["mode"] == "devices"
  pairs = list(zip(spread["sweeps"][0]["seeds"], sequential["sweeps"][0]["seeds"], strict=True))
  assert len(pairs) == 2
  for d, s in pairs:
    assert d["status"] == s["status"] == "completed"
    assert max_param_diff(latest_params(d["workdir"]), latest_params(s["workdir"])) <= 1e-5
    assert round(d["final"], 3) == round(s["final"], 3)
  assert pairs[0][0]["params_sha256"] != pairs[1][0]["params_sha256"]  # the two seeds did differ


@pytest.mark.slow
def test_seeds_command_line_success_writes_the_study(two_devices):
  """`jaxflow seeds` through cli.main (what the console script calls): exit 0, the report, and each seed a
  normal run workdir."""
  workdir = two_devices["workdir"]
  assert two_devices["seeds_exit"] == 0
  assert {"report.json", "report.md", "plots"} <= set(os.listdir(workdir))
  for png in ("curves.png", "finals.png"):
    with open(os.path.join(workdir, "plots", png), "rb") as f:
      assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  for i in range(2):
    seed = os.path.join(workdir, "init", f"seed_{i:03d}")
    assert {"config.json", "metrics.jsonl", "summary.json", "checkpoints"} <= set(os.listdir(seed)), seed
    with open(os.path.join(seed, "summary.json")) as f:
      assert json.load(f)["steps"] == 11  # 1437 // 128 steps of one epoch


# --- tune: objective="best" and UCB in a study ------------------------------------------------------------


class BestIsNotFinal:
  """The study's trainer (a real jaxflow.tune study: its loop, suggester, records and report), with runs
  replaced by summaries whose best epoch differs from the final one, as the tuning tests' fake does: the final
  eval accuracy 0.9 - (log10 lr + 2)^2 / 10, the best epoch's 0.05 above it."""

  def train_and_evaluate(self, cfg, workdir, *, quiet=True, compiled=None):
    from jaxflow.workdir import prepare_workdir

    prepare_workdir(workdir, cfg)
    final = 0.9 - (np.log10(cfg.optim.lr) + 2) ** 2 / 10
    summary = {"status": "completed", "final": {"eval": {"accuracy": final}}, "best": {"value": final + 0.05}}
    with open(os.path.join(workdir, "summary.json"), "w") as f:
      json.dump(summary, f)
    return summary

  def train_group(self, cfgs, workdirs, *, quiet=True, compiled=None):
    return [self.train_and_evaluate(c, w) for c, w in zip(cfgs, workdirs, strict=True)]


def test_tune_objective_best_and_ucb_in_a_study(tmp_path, monkeypatch):
  from jaxflow.run import train as loop
  from jaxflow.tuning import space as S
  from jaxflow.tuning import suggest

  fake = BestIsNotFinal()
  monkeypatch.setattr(loop, "train_and_evaluate", fake.train_and_evaluate)
  monkeypatch.setattr(loop, "train_group", fake.train_group)
  space = S.Space(S.log_uniform("optim.lr", 1e-4, 1e-1))
  config = jaxflow.load_config(config_path("digits_mlp.py"), ["model.widths=(16,)", "train.epochs=2"])
  report = jaxflow.tune(
    config, str(tmp_path), space=space, method="bo", trials=4, init_trials=3, acquisition="ucb", objective="best"
  )
  assert report["objective"] == "best" and report["settings"]["acquisition"] == "ucb"
  trials = report["trials"]
  assert [t["status"] for t in trials] == ["completed"] * 4
  for t in trials:  # the best epoch's value, not the final one's
    final = 0.9 - (np.log10(t["params"]["optim.lr"]) + 2) ** 2 / 10
    assert t["value"] == pytest.approx(final + 0.05, abs=1e-12)
  # The fourth trial is the GP's UCB proposal from the first three trials' values (negated: max mode),
  # recomputed here with a Suggester of its own. EI proposes another lr there, so a study that dropped the
  # acquisition would have tried another point; one fed the final values, a GP fit on other targets.
  observed, values = [t["params"] for t in trials[:3]], [-t["value"] for t in trials[:3]]
  expect = {
    kind: suggest.Suggester(space, "bo", seed=0, kind=kind, init_trials=3).suggest(3, 1, observed, values)[0]
    for kind in ("ucb", "ei")
  }
  assert trials[3]["params"]["optim.lr"] == pytest.approx(expect["ucb"]["optim.lr"], rel=1e-9)
  assert not np.isclose(expect["ucb"]["optim.lr"], expect["ei"]["optim.lr"], rtol=1e-3)
  assert report["best"]["index"] == int(np.argmax([t["value"] for t in trials]))
