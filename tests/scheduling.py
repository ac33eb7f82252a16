"""How the suite is spread over xdist's workers (tests/conftest.py's hooks; pyproject's addopts).

Two rules. The tests of a file that take one of its module- or class-scoped fixtures (a trained run, a
subprocess's results; found by reading the file's syntax tree) go to one worker together, so the fixture is
built once: spread test by test, each worker that drew one of them built its own. Every other test is a
unit of its own. And the units go out longest
first (tests/durations.json: CPU seconds per test, from a run with JAXFLOW_TEST_CPU_LOG, written by
`python tests/durations.py`), so the suite does not end with one long test on one worker while the others
idle; a test not recorded there counts as free and goes last.

xdist's own `--dist=loadgroup` would do the first through `xdist_group` marks, but with pytest 9.2 it groups
nothing (it renames a test's `_nodeid`, which pytest no longer reads), so the scheduler is built here.
"""

from __future__ import annotations

import ast
import functools
import json
import os

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
DURATIONS = os.path.join(TESTS, "durations.json")


def _shared_fixture_names(tree: ast.Module) -> set[str]:
  """Names of the module- or class-scoped fixtures a test file defines, and of the fixtures that use them."""
  fixtures: dict[str, tuple[bool, set[str]]] = {}
  for node in tree.body:
    if not isinstance(node, ast.FunctionDef):
      continue
    for decorator in node.decorator_list:
      call = decorator if isinstance(decorator, ast.Call) else None
      target = call.func if call else decorator
      if ast.unparse(target) != "pytest.fixture":
        continue
      scope = next((k.value for k in (call.keywords if call else ()) if k.arg == "scope"), None)
      shared = isinstance(scope, ast.Constant) and scope.value in ("module", "class")
      fixtures[node.name] = (shared, {a.arg for a in node.args.args})
  names = {name for name, (shared, _) in fixtures.items() if shared}
  grew = True
  while grew:  # a fixture that takes a shared one is shared too
    grew = False
    for name, (_, args) in fixtures.items():
      if name not in names and args & names:
        names.add(name)
        grew = True
  return names


@functools.cache
def tests_sharing_fixtures() -> frozenset[str]:
  """`file::test` of every test function that takes a module- or class-scoped fixture of its file."""
  found = set()
  for folder, _, names in os.walk(TESTS):
    for name in sorted(names):
      if not (name.startswith("test_") and name.endswith(".py")):
        continue
      path = os.path.join(folder, name)
      with open(path) as f:
        tree = ast.parse(f.read())
      shared = _shared_fixture_names(tree)
      relative = os.path.relpath(path, ROOT).replace(os.sep, "/")
      for node in tree.body:
        if (
          isinstance(node, ast.FunctionDef)
          and node.name.startswith("test")
          and {a.arg for a in node.args.args} & shared
        ):
          found.add(f"{relative}::{node.name}")
  return frozenset(found)


def unit(nodeid: str) -> str:
  """The unit of work a test belongs to: its file's shared-fixture group when it takes one of the file's
  module-scoped fixtures, else the test itself."""
  function = nodeid.split("[")[0]
  if function in tests_sharing_fixtures():
    return nodeid.split("::")[0] + "::(shared fixtures)"
  return nodeid


def recorded_seconds() -> dict[str, float]:
  try:
    with open(DURATIONS) as f:
      return json.load(f)
  except FileNotFoundError:
    return {}


def longest_first(items) -> None:
  """Sorts the collected items: units by their recorded CPU seconds, descending; a unit's tests together
  and in their own order."""
  seconds = recorded_seconds()
  cost, first = {}, {}
  for index, item in enumerate(items):
    u = unit(item.nodeid)
    cost[u] = cost.get(u, 0.0) + seconds.get(item.nodeid, 0.0)
    first.setdefault(u, index)
  order = {id(item): index for index, item in enumerate(items)}
  items.sort(key=lambda item: (-cost[unit(item.nodeid)], first[unit(item.nodeid)], order[id(item)]))


def scheduler(config, log):
  """xdist's scope scheduler with `unit` as the scope, the work queue in collection order."""
  from xdist.scheduler import LoadScopeScheduling

  class SharedFixtureScheduling(LoadScopeScheduling):
    def _split_scope(self, nodeid: str) -> str:
      return unit(nodeid)

  return SharedFixtureScheduling(config, log)
