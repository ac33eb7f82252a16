"""The package map holds: imports point down the floors, no cycle, no private name crosses a module.

Computed from the source with `ast` (nothing is imported), so it holds for every module, also those no
other test imports. The floors are the README's map (and `jaxflow/__init__.py`'s docstring):
a module may import its own package and the floors below, never a sibling package on its own floor.
"""

from __future__ import annotations

import ast
import functools
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2] / "jaxflow"

FLOORS = {
  "config": 0,
  "rng": 0,
  "plotting": 0,
  "workdir": 1,
  "models": 2,
  "data": 2,
  "annotations": 2,
  "training": 3,
  "precision": 3,
  "run": 4,
  "auditing": 5,
  "seeds": 5,
  "tuning": 5,
  "inspect": 5,
  "deploy": 5,
  "profiler": 6,
  "cli": 7,
  "__init__": 7,
}
# Function-level imports of jaxflow modules: only where the public API and the CLI defer loading jax,
# flax and tfds until a verb runs (so `import jaxflow` and `jaxflow --help` stay fast).
LAZY_LOADERS = {"__init__", "cli"}


def module_name(path: pathlib.Path) -> str:
  parts = path.relative_to(ROOT.parent).with_suffix("").parts
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit(module: str) -> str:
  """The top-level package or module of `jaxflow.x.y` (`x`); `jaxflow` itself is `__init__`."""
  parts = module.split(".")
  return parts[1] if len(parts) > 1 else "__init__"


def resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str:
  if node.level == 0:
    return node.module or ""
  base = module.split(".")
  base = base if is_package else base[:-1]
  base = base[: len(base) - (node.level - 1)]
  return ".".join(base + ([node.module] if node.module else []))


def collect():
  """{module: [(imported module, imported names, line, inside a function)]} of jaxflow's own imports."""
  modules = {module_name(p): p for p in ROOT.rglob("*.py")}
  graph = {}
  for module, path in modules.items():
    tree = ast.parse(path.read_text())
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    inner = {id(sub) for f in functions for sub in ast.walk(f) if isinstance(sub, (ast.Import, ast.ImportFrom))}
    edges = []
    for node in ast.walk(tree):
      if isinstance(node, ast.Import):
        edges += [(a.name, (), node.lineno, id(node) in inner) for a in node.names if a.name.startswith("jaxflow")]
      elif isinstance(node, ast.ImportFrom):
        target = resolve(module, node, path.name == "__init__.py")
        if not target.startswith("jaxflow"):
          continue
        names = tuple(a.name for a in node.names)
        submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules]
        others = tuple(n for n in names if f"{target}.{n}" not in modules)
        if others:  # names defined in `target` itself (`from jaxflow.data import Split`)
          edges.append((target, others, node.lineno, id(node) in inner))
        edges += [(s, (), node.lineno, id(node) in inner) for s in submodules]
    graph[module] = edges
  return modules, graph


@functools.cache
def source_map():
  """(MODULES, GRAPH), parsed once when a test first asks: not at import, which every xdist worker pays while
  collecting (~2 CPU-s of ast parsing) whether or not it runs these tests."""
  return collect()


def test_every_package_has_a_floor():
  modules = source_map()[0]
  assert {unit(m) for m in modules} <= set(FLOORS), sorted({unit(m) for m in modules} - set(FLOORS))


def test_imports_point_down():
  graph = source_map()[1]
  upward = []
  for module, edges in graph.items():
    for target, _, line, _ in edges:
      a, b = unit(module), unit(target)
      if a != b and FLOORS[b] >= FLOORS[a]:
        upward.append(f"{module}:{line} imports {target} (floor {FLOORS[a]} -> {FLOORS[b]})")
  assert not upward, "\n".join(upward)


def test_no_import_cycle():
  """No cycle among modules, counting imports inside functions too."""
  modules, imports = source_map()
  graph = {m: {t for t, *_ in edges if t in modules and t != m} for m, edges in imports.items()}
  state, cycles = {}, []

  def visit(node, path):
    state[node] = "open"
    for nxt in sorted(graph[node]):
      if state.get(nxt) == "open":
        cycles.append(" -> ".join(path[path.index(nxt) :] + [nxt]))
      elif nxt not in state:
        visit(nxt, path + [nxt])
    state[node] = "done"

  for node in sorted(graph):
    if node not in state:
      visit(node, [node])
  # A package's __init__ re-exporting its own modules is not a cycle of concerns.
  cycles = [c for c in cycles if not all(part.startswith(c.split(" -> ")[0]) for part in c.split(" -> "))]
  assert not cycles, "\n".join(cycles)


def test_no_private_name_crosses_a_module():
  modules = source_map()[0]
  crossing = []
  for module, path in modules.items():
    tree = ast.parse(path.read_text())
    aliases = {}
    for node in ast.walk(tree):
      if isinstance(node, ast.ImportFrom):
        target = resolve(module, node, path.name == "__init__.py")
        for a in node.names:
          if target.startswith("jaxflow") and a.name.startswith("_") and target != module:
            crossing.append(f"{module}:{node.lineno} imports {target}.{a.name}")
          if f"{target}.{a.name}" in modules:
            aliases[a.asname or a.name] = f"{target}.{a.name}"
      elif isinstance(node, ast.Import):
        for a in node.names:
          if a.name.startswith("jaxflow") and a.asname:
            aliases[a.asname] = a.name
    for node in ast.walk(tree):
      if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
        if node.attr.startswith("_") and not node.attr.startswith("__"):
          crossing.append(f"{module}:{node.lineno} uses {aliases[node.value.id]}.{node.attr}")
  assert not crossing, "\n".join(crossing)


def test_jaxflow_modules_are_imported_at_module_level():
  graph = source_map()[1]
  lazy = [
    f"{module}:{line} imports {target} inside a function"
    for module, edges in graph.items()
    for target, _, line, inner in edges
    if inner and unit(module) not in LAZY_LOADERS
  ]
  assert not lazy, "\n".join(lazy)


def explained(lines: list[str], lineno: int) -> bool:
  """A comment on the import's line, or above the block of import lines it belongs to."""
  if "#" in lines[lineno - 1]:
    return True
  above = lineno - 2
  while above >= 0 and lines[above].strip().startswith(("import ", "from ")):
    above -= 1
  return above >= 0 and lines[above].strip().startswith("#")


def test_deferred_third_party_imports_say_why():
  """A function-level import stays only for a heavy or optional dependency (or, in the CLI and the public
  API, for a module that loads them), with a comment on its line or the line above saying so."""
  modules = source_map()[0]
  silent = []
  for module, path in modules.items():
    lines = path.read_text().splitlines()
    tree = ast.parse("\n".join(lines))
    for function in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
      for node in ast.walk(function):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
          name = node.names[0].name if isinstance(node, ast.Import) else (node.module or "")
          if (name.startswith("jaxflow") or getattr(node, "level", 0)) and unit(module) not in LAZY_LOADERS:
            continue  # a jaxflow module: test_jaxflow_modules_are_imported_at_module_level
          if not explained(lines, node.lineno):
            silent.append(f"{module}:{node.lineno} imports {name} inside {function.name} without saying why")
  assert not silent, "\n".join(silent)


@pytest.mark.parametrize("limit", [500])
def test_no_module_over_500_lines(limit):
  modules = source_map()[0]
  long = {m: len(p.read_text().splitlines()) for m, p in modules.items()}
  assert not {m: n for m, n in long.items() if n > limit}


def test_no_function_over_80_lines():
  modules = source_map()[0]
  long = []
  for module, path in modules.items():
    for node in ast.walk(ast.parse(path.read_text())):
      if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 80:
        long.append(f"{module}.{node.name}: {node.end_lineno - node.lineno + 1} lines")
  assert not long, "\n".join(long)


def package_graph() -> dict[str, set[str]]:
  """{package: the packages it imports}: the map the README draws."""
  graph = source_map()[1]
  edges: dict[str, set[str]] = {}
  for module, imports in graph.items():
    for target, *_ in imports:
      if unit(module) != unit(target):
        edges.setdefault(unit(module), set()).add(unit(target))
  return edges


if __name__ == "__main__":
  for package, targets in sorted(package_graph().items(), key=lambda kv: -FLOORS[kv[0]]):
    print(f"{package} (floor {FLOORS[package]}) -> {', '.join(sorted(targets, key=lambda t: -FLOORS[t]))}")
