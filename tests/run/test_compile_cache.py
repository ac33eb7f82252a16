"""Compile once per machine: the second process of a config loads its programs from JAX's persistent cache."""

from __future__ import annotations

import json
import os
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
  env = user_env(**{compile_cache.ENV: str(tmp_path / "cache")})  # compiled as a user's runs are
  args = [f"--config={config_path('digits_mlp.py')}", "--config.train.epochs=3", "--quiet"]
  summaries = []
  for name in ("first", "second"):
    done = subprocess.run(
      [JAXFLOW, "train", *args, f"--workdir={tmp_path / name}"], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    summaries.append(json.load(open(tmp_path / name / "summary.json")))
  assert os.listdir(tmp_path / "cache")  # the first process wrote its programs there
  first, second = summaries
  assert second["params_sha256"] == first["params_sha256"]
  # A cache hit skips XLA's compilation (~1-4 s here for these programs), leaving tracing and lowering.
  assert second["compile_seconds"] < 0.5 * first["compile_seconds"], (
    first["compile_seconds"],
    second["compile_seconds"],
  )
