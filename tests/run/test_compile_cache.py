"""Compile once per machine: the second process of a config loads its programs from JAX's persistent cache."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from jaxflow.run import compile_cache
from tests.conftest import ROOT, config_path, user_env

JAXFLOW = os.path.join(os.path.dirname(sys.executable), "jaxflow")


def test_the_cache_dir_follows_the_setting_then_the_environment(monkeypatch):
  monkeypatch.setenv(compile_cache.ENV, "/tmp/somewhere")
  assert compile_cache.chosen_dir() == "/tmp/somewhere"
  assert compile_cache.chosen_dir("off") is None and compile_cache.chosen_dir("/elsewhere") == "/elsewhere"
  monkeypatch.setenv(compile_cache.ENV, "off")
  assert compile_cache.chosen_dir() is None
  monkeypatch.delenv(compile_cache.ENV)
  monkeypatch.setenv("XDG_CACHE_HOME", "/tmp/xdg")
  assert compile_cache.chosen_dir() == "/tmp/xdg/jaxflow/jax_compilation_cache"


@pytest.mark.slow
def test_a_second_process_loads_its_programs_and_trains_the_same(tmp_path):
  """JAX_LOG_COMPILES=1 makes JAX name every persistent-cache hit on stderr: the second process reads its init and
  epoch programs from the cache, the first reads none. (How much time that saves is a benchmark's question,
  benchmarks/cold_start.py: a wall-time ratio here failed once on a loaded machine.)"""
  env = user_env(**{compile_cache.ENV: str(tmp_path / "cache"), "JAX_LOG_COMPILES": "1"})  # compiled as a user's
  args = [f"--config={config_path('digits_mlp.py')}", "--config.train.epochs=3", "--quiet"]
  summaries, hits = [], []
  for name in ("first", "second"):
    done = subprocess.run(
      [JAXFLOW, "train", *args, f"--workdir={tmp_path / name}"], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summaries.append(json.load(open(tmp_path / name / "summary.json")))
    hits.append(set(re.findall(r"Persistent compilation cache hit for '([^']+)'", done.stderr)))
  assert os.listdir(tmp_path / "cache")  # the first process wrote its programs there
  assert hits[0] == set() and {"jit_init", "jit_train_epoch"} <= hits[1], hits
  first, second = summaries
  assert second["params_sha256"] == first["params_sha256"]
  print(f"compile_seconds: first {first['compile_seconds']:.2f}, second {second['compile_seconds']:.2f}")
