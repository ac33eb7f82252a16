"""Shared test setup: one prepared data dir per worker, one compilation cache for the whole session, and the
repo root on sys.path.

The data dir is exported as JAXFLOW_DATA_DIR so CLI subprocesses started by tests find the same prepared
digits instead of preparing them again (or touching the user's cache). JAXFLOW_COMPILATION_CACHE points every
test, worker and subprocess at one fresh persistent compilation cache (beside the workers' temporary folders):
a program compiled once in the session is loaded from there by every later test that builds it.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The suite's programs are tiny and run for a few steps: XLA's optimization passes cost more than they save
# (measured: the training and RNN tests took 80 CPU-s with them, 58 without). JAX reads this when it is
# imported, so it is set before any test module imports jax, and test subprocesses inherit it. Numerics
# compared within the suite are computed under the same setting; the benchmarks run with XLA's defaults.
# XLA:CPU's MLIR fusion emitters take twice the compile time of its older LLVM IR emitters on these programs
# (measured: the digits CNN and MLP trained for 2 epochs each, backend compile 1.85 -> 0.86 s, the whole
# 4.7 -> 2.95 CPU-s), and splitting each module for parallel code generation costs more than it saves on
# programs this small (0.91 -> 0.76 s, 3 paired runs). Workers that set XLA_FLAGS (forced devices) append.
SUITE_XLA_FLAGS = ("--xla_cpu_use_fusion_emitters=false", "--xla_cpu_parallel_codegen_split_count=1")
# What the suite itself added (a user's own setting of a variable or flag is kept and wins), named in the
# environment so that xdist workers and subprocesses, which inherit the settings, know it too (`user_env`).
ADDED_ENV = "JAXFLOW_TESTS_ADDED_SETTINGS"


def _flag_name(flag: str) -> str:
  return flag.split("=", 1)[0]


def _add_suite_settings() -> None:
  if ADDED_ENV in os.environ:  # the session's first process did it; this one inherited the result
    return
  added = []
  if "JAX_DISABLE_MOST_OPTIMIZATIONS" not in os.environ:
    os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"] = "1"
    added.append("JAX_DISABLE_MOST_OPTIMIZATIONS")
  present = os.environ.get("XLA_FLAGS", "").split()
  names = {_flag_name(flag) for flag in present}
  flags = [flag for flag in SUITE_XLA_FLAGS if _flag_name(flag) not in names]
  if flags:
    os.environ["XLA_FLAGS"] = " ".join([*present, *flags])
  os.environ[ADDED_ENV] = " ".join([*added, *flags])


_add_suite_settings()
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)


def pytest_collection_modifyitems(config, items):
  """The longest units of work first (tests/scheduling.py)."""
  from tests import scheduling

  scheduling.longest_first(items)


if importlib.util.find_spec("xdist") is not None:  # pytest refuses a hook it has no spec for

  def pytest_xdist_make_scheduler(config, log):
    """With `-n N` and pyproject's `--dist=loadscope`: the tests sharing a file's module fixture run on one
    worker, the rest test by test (tests/scheduling.py); any other --dist keeps xdist's own scheduler."""
    if config.getvalue("dist") != "loadscope":
      return None
    from tests import scheduling

    return scheduling.scheduler(config, log)


@pytest.fixture(scope="session", autouse=True)
def data_dir(tmp_path_factory) -> str:
  path = str(tmp_path_factory.mktemp("jaxflow_data"))
  previous = os.environ.get("JAXFLOW_DATA_DIR")
  os.environ["JAXFLOW_DATA_DIR"] = path
  # `jaxflow seeds --mode=auto` remembers its decisions per machine: never in the user's cache, and off
  # unless a test turns it on (a test's timing must not decide another test's mode).
  os.environ["JAXFLOW_SEEDS_MODE_CACHE"] = "off"
  if "JAXFLOW_COMPILATION_CACHE" not in os.environ:  # shared by the xdist workers of this session
    os.environ["JAXFLOW_COMPILATION_CACHE"] = str(session_folder(tmp_path_factory) / "jax_compilation_cache")
  from jaxflow import data

  data.dataset_spec("digits", data_dir=path)  # prepare once, before any test times or parses output
  yield path
  if previous is None:
    os.environ.pop("JAXFLOW_DATA_DIR", None)
  else:
    os.environ["JAXFLOW_DATA_DIR"] = previous


def user_env(**extra: str) -> dict[str, str]:
  """This process's environment without the compile settings the suite added (XLA's optimizations and code
  generator as a user has them; settings the user gave are kept), for subprocesses whose test is about
  compilation itself; `extra` added."""
  added = os.environ.get(ADDED_ENV, "").split()
  env = {k: v for k, v in os.environ.items() if k not in added and k != ADDED_ENV}
  flags = [flag for flag in env.get("XLA_FLAGS", "").split() if flag not in added]
  if flags:
    env["XLA_FLAGS"] = " ".join(flags)
  else:
    env.pop("XLA_FLAGS", None)
  return env | extra


def config_path(name: str) -> str:
  return os.path.join(ROOT, "configs", name)


def merge_overrides(*overrides: str) -> list[str]:
  """`a.b=v` overrides in the order first given, a later one of a field replacing the earlier: tests build
  on shared lists (TINY plus a test's own), and jaxflow.load_config refuses a field given twice."""
  merged: dict[str, str] = {}
  for override in overrides:
    merged[override.split("=", 1)[0]] = override
  return list(merged.values())


def latest_params(workdir: str):
  """The parameters of a run's latest checkpoint (read-only, on the first device)."""
  from jaxflow.training import checkpoints

  return checkpoints.read_run_params(workdir)[0]


def max_param_diff(a, b) -> float:
  """max |a - b| over every parameter of two parameter trees of the same structure."""
  import jax
  import numpy as np

  return max(
    float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
  )


def fixed_mock_getitems(*args, generator, serialized=False):
  """tfds 4.9.10's mock `__getitems__` is stored unbound on a MagicMock, so it receives the keys as
  `self` and fails; this takes the keys as the last positional argument, bound or not."""
  assert not serialized
  return [generator[key] for key in args[-1]]


def session_folder(tmp_path_factory):
  """The temporary folder every xdist worker of this session shares (the workers' own folders are inside it)."""
  base = tmp_path_factory.getbasetemp()
  return base.parent if base.name.startswith("popen-gw") else base


def built_once(tmp_path_factory, name: str, build) -> str:
  """`build(path)` run once per test session, not once per xdist worker: the first worker that asks builds
  into the shared session folder under a file lock, the others wait for it and get the same path. For
  what tests only read (a trained run, an exported model); session fixtures are otherwise rebuilt on
  every worker that uses them."""
  import fcntl
  import shutil

  folder = session_folder(tmp_path_factory) / "built_once"
  folder.mkdir(exist_ok=True)
  path, done = folder / name, folder / f"{name}.done"
  with open(folder / f"{name}.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not done.exists():
      shutil.rmtree(path, ignore_errors=True)  # a build that failed in another worker starts over
      build(str(path))
      done.touch()
  return str(path)


# Trained runs and their exports, made once per test session and shared by the deploy and the profiler
# tests: a small digits CNN (the image path: uint8 pixels, /255 in the program) and a small digits MLP, a
# few epochs each, exported as f32. Tests that need another precision or an ensemble export these runs.
DEPLOY_CNN = ["model.conv_features=(8,)", "model.widths=(16,)", "train.epochs=3", "train.histogram_every=1000"]
DEPLOY_MLP = ["model.widths=(32,)", "train.epochs=3", "train.histogram_every=1000"]


def _trained(config_file: str, overrides: list[str]):
  def build(workdir: str) -> None:
    import jaxflow

    jaxflow.train(jaxflow.load_config(config_path(config_file), overrides), workdir, quiet=True)

  return build


def _exported(run: str):
  def build(out: str) -> None:
    import jaxflow

    jaxflow.export(run, out)

  return build


@pytest.fixture(scope="session")
def cnn_run(tmp_path_factory) -> str:
  return built_once(tmp_path_factory, "cnn_run", _trained("digits_cnn.py", DEPLOY_CNN))


@pytest.fixture(scope="session")
def mlp_run(tmp_path_factory) -> str:
  return built_once(tmp_path_factory, "mlp_run", _trained("digits_mlp.py", DEPLOY_MLP))


@pytest.fixture(scope="session")
def cnn_model(cnn_run, tmp_path_factory) -> str:
  """The CNN run exported (f32): the folder `jaxflow.load_model` and `--model=` take."""
  return built_once(tmp_path_factory, "cnn_model", _exported(cnn_run))


@pytest.fixture(scope="session")
def mlp_model(mlp_run, tmp_path_factory) -> str:
  return built_once(tmp_path_factory, "mlp_model", _exported(mlp_run))


# `JAXFLOW_TEST_CPU_LOG=FILE pytest ...` appends one JSON line per test phase: CPU seconds of the worker and of
# the subprocesses it waited for, and wall seconds. CPU time, unlike wall time, does not grow when the machine
# is shared, so this is how the suite's cost per test is compared across runs (issue: a 5-minute suite). Each
# line also has the seconds the worker spent in JAX's compile pipeline during the test (jax.monitoring's
# events: tracing, lowering to StableHLO, XLA's compile or a persistent-cache read), which is where most of
# the suite's CPU goes (tests/durations.py prints the share).
COMPILE_EVENTS = {
  "/jax/core/compile/jaxpr_trace_duration": "trace",
  "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower",
  "/jax/core/compile/backend_compile_duration": "compile",
}
_COMPILE_SECONDS = pytest.StashKey[dict]()


def _compile_seconds(config) -> dict:
  """The worker's running totals per compile stage, listening from the first logged test on."""
  if _COMPILE_SECONDS not in config.stash:
    import jax.monitoring

    totals = config.stash[_COMPILE_SECONDS] = dict.fromkeys(COMPILE_EVENTS.values(), 0.0)

    def listen(event: str, duration: float, **_) -> None:
      if event in COMPILE_EVENTS:
        totals[COMPILE_EVENTS[event]] += duration

    jax.monitoring.register_event_duration_secs_listener(listen)
  return config.stash[_COMPILE_SECONDS]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
  path = os.environ.get("JAXFLOW_TEST_CPU_LOG")
  if not path:
    yield
    return
  import json
  import resource
  import time

  from tests import forkserver

  def cpu() -> tuple[float, float]:  # the fork server's children are not this process's: counted apart
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime + forkserver.children_cpu()

  totals = _compile_seconds(item.config)
  before = dict(totals)
  (self0, kids0), wall0 = cpu(), time.perf_counter()
  yield
  (self1, kids1), wall1 = cpu(), time.perf_counter()
  record = {"test": item.nodeid, "cpu": self1 - self0, "children_cpu": kids1 - kids0, "wall": wall1 - wall0}
  record |= {stage: totals[stage] - before[stage] for stage in totals}
  with open(path, "a") as f:
    f.write(json.dumps(record) + "\n")
