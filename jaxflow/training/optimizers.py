"""Optimizers and learning-rate schedules from the config (optax).

Build the optimizer once per run and share it: a fresh `optax.adam()` per TrainState is a new static
`tx` and recompiles every jitted step (~0.7 s each, see PITFALLS.md).
"""

from __future__ import annotations

import jax
import ml_collections
import optax

OPTIMIZER_NAMES = ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULE_NAMES = ("constant", "cosine", "exponential", "linear")


def create_schedule(optim: ml_collections.ConfigDict, *, total_steps: int, steps_per_epoch: int) -> optax.Schedule:
  """lr(step): optional linear warmup from 0, then the named schedule over the remaining steps."""
  lr, warmup = optim.lr, optim.warmup_steps
  decay_steps = max(total_steps - warmup, 1)
  end = lr * optim.end_lr_factor
  if optim.schedule == "constant":
    main = optax.constant_schedule(lr)
  elif optim.schedule == "cosine":
    main = optax.cosine_decay_schedule(lr, decay_steps=decay_steps, alpha=optim.end_lr_factor)
  elif optim.schedule == "linear":
    main = optax.linear_schedule(lr, end, transition_steps=decay_steps)
  else:  # exponential: lr * decay_rate ** (step / decay_steps), decay_steps defaulting to one epoch
    main = optax.exponential_decay(
      lr, transition_steps=optim.decay_steps or steps_per_epoch, decay_rate=optim.decay_rate
    )
  if warmup == 0:
    return main
  return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), main], boundaries=[warmup])


def _is_kernel(params) -> object:
  """Weight decay applies to kernels (ndim >= 2), not to biases or norm scales."""
  return jax.tree.map(lambda p: p.ndim >= 2, params)


def create_optimizer(
  optim: ml_collections.ConfigDict, schedule: optax.Schedule, *, runtime: bool = False
) -> optax.GradientTransformation:
  """The named optimizer on `schedule`. `runtime`: the bare update rule, without clipping or weight
  decay, for a group whose runs bring their own lr and decay as data (steps.RuntimeHparams; the
  schedule is then the lr-1 one)."""
  name, momentum, wd = optim.name, optim.momentum, optim.weight_decay
  if runtime:
    wd = 0.0
  if name == "sgd":
    base = optax.sgd(schedule)
  elif name == "momentum":
    base = optax.sgd(schedule, momentum=momentum)
  elif name == "nesterov":
    base = optax.sgd(schedule, momentum=momentum, nesterov=True)
  elif name == "adam":
    base = optax.adam(schedule)
  elif name == "adamw":
    base = optax.adamw(schedule, weight_decay=wd, mask=_is_kernel)
  elif name == "rmsprop":
    base = optax.rmsprop(schedule, momentum=momentum)
  else:
    base = optax.adagrad(schedule)
  if runtime:
    return base  # built with weight decay 0: a group's decay (and clipping) come from the step
  parts = []
  if optim.clip_norm is not None:
    parts.append(optax.clip_by_global_norm(optim.clip_norm))
  if wd > 0 and name != "adamw":  # coupled L2: decay enters the gradient before the update rule
    parts.append(optax.add_decayed_weights(wd, mask=_is_kernel))
  parts.append(base)
  return optax.chain(*parts) if len(parts) > 1 else base
