"""`jaxflow.seeds` is the public verb even after its subpackage `jaxflow.seeds` has been imported."""

from __future__ import annotations

import importlib

import jaxflow


def test_the_verb_survives_the_import_of_its_subpackage():
  from jaxflow.seeds import stats  # loads the subpackage: Python would set jaxflow.seeds = <module>

  importlib.import_module("jaxflow.seeds.study")
  assert callable(jaxflow.seeds) and jaxflow.seeds.__module__ == "jaxflow"
  assert stats.describe([1.0, 2.0])["n"] == 2  # the subpackage itself is still reachable by importing from it
  assert importlib.import_module("jaxflow.seeds").run_seeds is importlib.import_module("jaxflow.seeds.study").run_seeds
  assert "seeds" in jaxflow.__all__
