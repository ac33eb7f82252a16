"""What XLA made of a program: fusion and op counts of the optimized HLO, cost and memory analysis.

`hlo_stats(compiled.as_text())` parses the optimized (post-fusion, scheduled) HLO module:

- **kernels** are the instructions of the computations the runtime executes one instruction at a time:
  ENTRY and what it runs as control flow (`while` bodies and conditions, `conditional` branches,
  `call`s), recursively. Bookkeeping instructions that launch no work (parameter, constant, tuple,
  get-tuple-element, bitcast, after-all, opt-barrier) are left out. `fusions` counts the kernels that
  are `fusion` instructions (by kind: kLoop, kInput, kOutput, kCustom), `multi_op_fusions` those that
  merge two or more ops (XLA:CPU's default code generator also wraps single ops as one-op fusions; with
  `--xla_cpu_use_fusion_emitters=false` it does not), `ops` counts all kernels.
  A `while` body is counted once, however many trips it makes (the HLO is static).
- **fused instructions** are the instructions inside fused computations: the elementwise and
  reduction work that XLA merged into those kernels instead of running it op by op.
- scalar computations applied by reduce / scatter / sort / reduce-window (`to_apply=`) are neither.
- `matmuls`: every dot and convolution wherever it sits (in a kernel or inside a fusion), by the
  element types of its operands and result, e.g. `dot bf16,bf16->bf16` or `convolution s8,s8->s32`:
  what the backend really multiplies in (XLA:CPU, for example, may turn a bf16 dot into converts and
  an f32 dot).

`cost(compiled)` and `memory(compiled)` normalize `cost_analysis()` (FLOPs, bytes accessed,
transcendentals) and `memory_analysis()` (argument, output, alias, temporary and peak bytes: the
dynamic tensor memory XLA's buffer assignment planned).
"""

from __future__ import annotations

import collections
import re

BOOKKEEPING = frozenset(
  {
    "parameter",
    "constant",
    "tuple",
    "get-tuple-element",
    "bitcast",
    "after-all",
    "opt-barrier",
    "partition-id",
    "replica-id",
  }
)
CONTROL_ATTRS = ("body", "condition", "branch_computations", "true_computation", "false_computation")

_COMPUTATION = re.compile(r"^(ENTRY\s+)?%([\w.\-]+)\s*\(.*\)\s*->\s*.*\{\s*$")
_INSTRUCTION = re.compile(r"^\s*(ROOT\s+)?%([\w.\-]+)\s*=\s*(.*)$")
_REFERENCE = re.compile(r"%([\w.\-]+)")
_DTYPE = re.compile(r"^\(?\s*([a-z]+[0-9]*[a-z0-9]*)\[")


def _split_type(rest: str) -> tuple[str, str]:
  """'f32[2]{0} add(%a, %b), ...' -> ('f32[2]{0}', 'add(%a, %b), ...'); tuple types '(f32[2], s32[]) ...'."""
  if rest.startswith("("):
    depth = 0
    for i, ch in enumerate(rest):
      depth += ch == "("
      depth -= ch == ")"
      if depth == 0:
        return rest[: i + 1], rest[i + 1 :].lstrip()
  type_, _, tail = rest.partition(" ")
  return type_, tail


def _attr_names(tail: str, attr: str) -> list[str]:
  """Computation names in `attr=%x` or `attr={%x, %y}` of an instruction's attribute text."""
  match = re.search(rf"\b{attr}=(\{{[^}}]*\}}|%[\w.\-]+)", tail)
  return _REFERENCE.findall(match.group(1)) if match else []


def _operand_text(tail: str) -> str:
  """The text between the opcode's parentheses (operands)."""
  start = tail.find("(")
  if start < 0:
    return ""
  depth = 0
  for i in range(start, len(tail)):
    depth += tail[i] == "("
    depth -= tail[i] == ")"
    if depth == 0:
      return tail[start + 1 : i]
  return tail[start + 1 :]


def parse_module(text: str) -> tuple[dict[str, list[dict]], str | None]:
  """{computation name: [instruction dicts]} and the ENTRY computation's name."""
  computations: dict[str, list[dict]] = {}
  entry, current = None, None
  for line in text.splitlines():
    header = _COMPUTATION.match(line.strip()) if current is None else None
    if header:
      current = header.group(2)
      computations[current] = []
      if header.group(1):
        entry = current
      continue
    if current is not None and line.strip() == "}":
      current = None
      continue
    if current is None:
      continue
    inst = _INSTRUCTION.match(line)
    if not inst:
      continue
    type_, tail = _split_type(inst.group(3).strip())
    opcode = tail.split("(", 1)[0].strip()
    computations[current].append({"name": inst.group(2), "type": type_, "opcode": opcode, "tail": tail})
  return computations, entry


def _dtype(type_text: str) -> str:
  """The element type of an HLO type text ("f32[2,3]{1,0}" -> "f32"; "?" if none)."""
  match = _DTYPE.match(type_text.strip())
  return match.group(1) if match else "?"


def hlo_stats(text: str) -> dict:
  """Kernel, fusion and matmul counts of an optimized HLO module's text (module docstring)."""
  computations, entry = parse_module(text)
  if entry is None:
    raise ValueError("no ENTRY computation in the HLO text")
  executed, fused = _executed_and_fused(computations, entry)
  opcodes, fusion_kinds, multi_op = _kernel_counts(computations, executed)
  return {
    "ops": int(sum(opcodes.values())),
    "fusions": int(opcodes.get("fusion", 0)),
    "multi_op_fusions": int(multi_op),
    "fusion_kinds": dict(sorted(fusion_kinds.items())),
    "fused_instructions": int(
      sum(sum(i["opcode"] not in BOOKKEEPING for i in computations[c]) for c in fused if c in computations)
    ),
    "instructions": int(sum(len(v) for v in computations.values())),
    "computations": len(computations),
    "while_loops": int(opcodes.get("while", 0)),
    "opcodes": dict(opcodes.most_common()),
    "matmuls": dict(sorted(_matmul_counts(computations).items())),
  }


def _executed_and_fused(computations: dict[str, list[dict]], entry: str) -> tuple[set, set]:
  """(computations run instruction by instruction: ENTRY and its control flow; those their fusions call)."""
  executed, fused = set(), set()
  stack = [entry]
  while stack:
    name = stack.pop()
    if name in executed or name not in computations:
      continue
    executed.add(name)
    for inst in computations[name]:
      if inst["opcode"] == "fusion":
        fused.update(_attr_names(inst["tail"], "calls"))
      for attr in CONTROL_ATTRS:
        stack += _attr_names(inst["tail"], attr)
      if inst["opcode"] in ("call", "async-start"):
        stack += _attr_names(inst["tail"], "to_apply") + _attr_names(inst["tail"], "calls")
  pending = list(fused)
  while pending:  # fusions nest (a fusion computation may call fused sub-computations)
    for inst in computations.get(pending.pop(), []):
      for name in _attr_names(inst["tail"], "calls"):
        if name not in fused:
          fused.add(name)
          pending.append(name)
  return executed, fused


def _kernel_counts(computations: dict[str, list[dict]], executed: set) -> tuple:
  """(opcode counts of the kernels, fusion counts by kind, how many fusions merge two or more ops)."""
  opcodes: collections.Counter = collections.Counter()
  fusion_kinds: collections.Counter = collections.Counter()
  multi_op = 0
  for name in executed:
    for inst in computations[name]:
      if inst["opcode"] in BOOKKEEPING:
        continue
      opcodes[inst["opcode"]] += 1
      if inst["opcode"] == "fusion":
        kind = re.search(r"kind=(k\w+)", inst["tail"])
        fusion_kinds[kind.group(1) if kind else "?"] += 1
        called = _attr_names(inst["tail"], "calls")
        multi_op += sum(sum(i["opcode"] not in BOOKKEEPING for i in computations.get(c, [])) for c in called) >= 2
  return opcodes, fusion_kinds, multi_op


def _matmul_counts(computations: dict[str, list[dict]]) -> collections.Counter:
  """Every dot and convolution, wherever it sits, by its operand and result element types."""
  shapes = {inst["name"]: inst["type"] for insts in computations.values() for inst in insts}
  matmuls: collections.Counter = collections.Counter()
  for insts in computations.values():
    for inst in insts:
      if inst["opcode"] in ("dot", "convolution"):
        operands = _REFERENCE.findall(_operand_text(inst["tail"]))[:2]
        kinds = ",".join(_dtype(shapes.get(o, "?")) for o in operands)
        matmuls[f"{inst['opcode']} {kinds}->{_dtype(inst['type'])}"] += 1
  return matmuls


def cost(compiled) -> dict:
  """FLOPs, bytes accessed and transcendentals from XLA's cost model (None where not reported)."""
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):  # older jax: one dict per device program
    analysis = analysis[0] if analysis else {}
  analysis = analysis or {}
  flops, accessed = analysis.get("flops"), analysis.get("bytes accessed")
  return {
    "flops": None if flops is None else float(flops),
    "bytes_accessed": None if accessed is None else float(accessed),
    "transcendentals": None if analysis.get("transcendentals") is None else float(analysis["transcendentals"]),
    "arithmetic_intensity": float(flops) / float(accessed) if flops and accessed else None,
  }


MEMORY_FIELDS = (
  "argument_size_in_bytes",
  "output_size_in_bytes",
  "alias_size_in_bytes",
  "temp_size_in_bytes",
  "generated_code_size_in_bytes",
  "peak_memory_in_bytes",
)


def memory(compiled) -> dict:
  """memory_analysis(): argument / output / alias / temp (the dynamic tensor memory) / peak bytes."""
  try:
    analysis = compiled.memory_analysis()
  except Exception as e:
    return {"error": f"{type(e).__name__}: {e}"}
  if analysis is None:
    return {"error": "memory_analysis() returned None on this backend"}
  out = {}
  for field in MEMORY_FIELDS:
    value = getattr(analysis, field, None)
    out[field.removesuffix("_in_bytes").removesuffix("_size") + "_bytes"] = None if value is None else int(value)
  return out


def jaxpr_matmul_dtypes(closed_jaxpr) -> dict[str, int]:
  """Dots and convolutions of a jaxpr (what the program asks for, before XLA), by operand dtypes,
  counting inside scans, jits and custom-derivative rules once each."""
  counts: collections.Counter = collections.Counter()

  def visit(jaxpr):
    for eqn in jaxpr.eqns:
      if eqn.primitive.name in ("dot_general", "conv_general_dilated"):
        kinds = ",".join(str(v.aval.dtype) for v in eqn.invars[:2])
        counts[f"{eqn.primitive.name} {kinds}->{eqn.outvars[0].aval.dtype}"] += 1
      for param in eqn.params.values():
        for sub in param if isinstance(param, (list, tuple)) else [param]:
          inner = getattr(sub, "jaxpr", None)
          if inner is not None:
            visit(inner if hasattr(inner, "eqns") else inner.jaxpr)
          elif hasattr(sub, "eqns"):
            visit(sub)

  visit(closed_jaxpr.jaxpr)
  return dict(sorted(counts.items()))


def count_jaxpr_eqns(closed_jaxpr) -> int:
  """Primitive applications in a jaxpr, nested ones included: the ops an op-by-op run dispatches
  (a scan body counted once, not once per trip)."""

  def visit(jaxpr) -> int:
    total = 0
    for eqn in jaxpr.eqns:
      nested = 0
      for param in eqn.params.values():
        for sub in param if isinstance(param, (list, tuple)) else [param]:
          inner = getattr(sub, "jaxpr", None)
          if inner is not None:
            nested += visit(inner if hasattr(inner, "eqns") else inner.jaxpr)
          elif hasattr(sub, "eqns"):
            nested += visit(sub)
      total += nested or 1
    return total

  return visit(closed_jaxpr.jaxpr)
