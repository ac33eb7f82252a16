"""Op-by-op execution of a program's jaxpr: every primitive dispatched as its own kernel, no fusion.

`jax.disable_jit()` around a model's Python runs op by op too, but it also re-runs the framework's
Python (flax builds modules, scopes and parameter lookups on every call; an LSTM does so per time
step), which for the digits RNN costs ~50x more than the ops themselves. What fusion and jit remove
is the per-op dispatch and the unfused kernels, so the profiler's **unfused** variant evaluates the
traced jaxpr itself, equation by equation, each primitive bound eagerly: a call of the program pays
one dispatch per primitive it runs. Calls into nested programs are opened up rather than compiled:
`pjit`/`closed_call`/custom-derivative calls run their body op by op, `scan` and `while` loop in
Python over their body (one dispatch per op per iteration), `cond` runs the branch taken. The model
code's own eager run is still measured, as **eager**, to show the framework's share.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.extend import core

CALLS = (
  "pjit",
  "jit",
  "closed_call",
  "core_call",
  "remat",
  "checkpoint",
  "custom_jvp_call",
  "custom_vjp_call",
  "custom_vjp_call_jaxpr",
)


def _closed(jaxpr):
  """(jaxpr, consts) of a ClosedJaxpr or a Jaxpr."""
  return (jaxpr.jaxpr, jaxpr.consts) if hasattr(jaxpr, "consts") else (jaxpr, [])


def _run(jaxpr, args, count) -> list:
  inner, consts = _closed(jaxpr)
  return _eval(inner, consts, args, count)


def _scan(params, args, count) -> list:
  n_consts, n_carry, length = params["num_consts"], params["num_carry"], params["length"]
  consts, carry, xs = args[:n_consts], list(args[n_consts : n_consts + n_carry]), args[n_consts + n_carry :]
  steps = range(length - 1, -1, -1) if params["reverse"] else range(length)
  ys = []
  for i in steps:
    out = _run(params["jaxpr"], [*consts, *carry, *[x[i] for x in xs]], count)
    carry, y = out[:n_carry], out[n_carry:]
    ys.append(y)
  if params["reverse"]:
    ys.reverse()
  stacked = [jnp.stack([y[k] for y in ys]) for k in range(len(ys[0]))] if ys else []
  return [*carry, *stacked]


def _while(params, args, count) -> list:
  nc, nb = params["cond_nconsts"], params["body_nconsts"]
  cond_consts, body_consts, carry = args[:nc], args[nc : nc + nb], list(args[nc + nb :])
  while bool(_run(params["cond_jaxpr"], [*cond_consts, *carry], count)[0]):
    carry = _run(params["body_jaxpr"], [*body_consts, *carry], count)
  return carry


def _eval(jaxpr, consts, args, count) -> list:
  env = {}

  def read(v):
    return v.val if isinstance(v, core.Literal) else env[v]

  for v, value in zip(jaxpr.constvars, consts):
    env[v] = value
  for v, value in zip(jaxpr.invars, args):
    env[v] = value
  for eqn in jaxpr.eqns:
    invals = [read(v) for v in eqn.invars]
    name = eqn.primitive.name
    if name in CALLS:
      body = eqn.params.get("jaxpr") or eqn.params.get("call_jaxpr") or eqn.params.get("fun_jaxpr")
      outs = _run(body, invals, count)
    elif name == "scan":
      outs = _scan(eqn.params, invals, count)
    elif name == "while":
      outs = _while(eqn.params, invals, count)
    elif name == "cond":
      index, *operands = invals
      outs = _run(eqn.params["branches"][int(index)], operands, count)
    else:
      count[0] += 1
      outs = eqn.primitive.bind(*invals, **eqn.params)
      outs = outs if eqn.primitive.multiple_results else [outs]
    for v, value in zip(eqn.outvars, outs):
      if not isinstance(v, core.DropVar):
        env[v] = value
  return [read(v) for v in jaxpr.outvars]


class OpByOp:
  """A callable with `fn`'s signature that runs `fn`'s jaxpr (traced once, at `example_args`' shapes)
  op by op and returns `fn`'s output pytree; `dispatches` is the number of primitives the last call
  bound (a scan body's counted once per iteration)."""

  def __init__(self, fn, *example_args):
    self.closed, out_shape = jax.make_jaxpr(fn, return_shape=True)(*example_args)
    self.treedef = jax.tree.structure(out_shape)
    self.dispatches = 0

  def __call__(self, *args):
    count = [0]
    with jax.disable_jit():
      flat = _run(self.closed, jax.tree.leaves(args), count)
    self.dispatches = count[0]
    return jax.tree.unflatten(self.treedef, flat)


op_by_op = OpByOp
