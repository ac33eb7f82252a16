"""The contenders of benchmarks/train_overhead.py other than jaxflow: the same training done by other loops.

Every contender returns the end time of each epoch (`time.perf_counter()` once the epoch's work is done
on the device, or its results on the host), and `steady_rate` turns those into steady-state steps/s over
epochs 2..E: epoch 1 holds the compilation, which each contender times apart.

- `per_step_run`: the flax-examples loop (the flax mnist example's `train_epoch` + `apply_model`): a numpy
  permutation per epoch, batches sliced on the host (`images[perm]`), one `jax.jit` train step per batch
  (value_and_grad, apply_gradients, per-step loss and accuracy; flax's example jits the gradient and the
  update separately, fused here, which only makes this baseline faster), per-epoch train loss/accuracy
  gathered on the host, then one jitted evaluation on the whole test split. No files, no checkpoints.
  Model from `jaxflow.models.create_model`, optimizer from `jaxflow.training.optimizers`, initial
  parameters from jaxflow's `init` PRNG stream: the same as jaxflow's. Data: `jaxflow.data.load_split`.
- `scan_run`: the fused ceiling. Built from jaxflow's own pure functions (`jaxflow.training.steps`:
  `epoch_indices` + `train_chunk` over `train_step`, the train half of `steps.train_epoch` that
  jaxflow's fused program runs), jitted here, data on the device (`jaxflow.run.assemble.device_data`),
  NO evaluation, no host work but one `block_until_ready` per epoch. Same step, same optimizer, same
  init program as jaxflow; not donated, like jaxflow's epoch program.
- `scan_eval_run`: the same plus the evaluation jaxflow runs every epoch: jaxflow's fused
  `Programs.epoch` program (shuffle + scan + eval of the test split) dispatched back to back, one
  `block_until_ready` per epoch, nothing fetched or logged. scan+eval / bare scan is what evaluation
  costs; jaxflow / scan+eval is what jaxflow's host work costs.
- `keras_run`: Keras 3 `Model.fit` on JAX (optional: `pip install -e ".[bench]"`): Flatten, Dense 256
  relu x2, Dense 10 (logits), Adam(lr), sparse categorical cross-entropy from logits, accuracy, the
  config's batch size and epochs, `validation_data` = the test split every epoch (like jaxflow's eval).
  The training set is cut to steps_per_epoch * batch_size examples so every Keras step is a full batch,
  as in every other contender (jaxflow drops the last partial batch). Keras's own initializers and
  shuffling; its epoch ends are a callback's `on_epoch_end` timestamps (after validation).
"""

from __future__ import annotations

import functools
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training import train_state

from jaxflow import models, rng
from jaxflow.run.assemble import device_data
from jaxflow.run.validate import validate
from jaxflow.training import losses, optimizers, steps
from jaxflow.training import programs as programs_lib
from jaxflow.training import state as state_lib


def steady_rate(epoch_ends: list[float], steps_per_epoch: int) -> dict:
  """Steady-state steps/s from the end times of epochs 1..E: epochs 2..E (epoch 1 compiles)."""
  if len(epoch_ends) < 2:
    raise RuntimeError("need at least 2 epochs to time the steady state")
  diffs = np.diff(epoch_ends).tolist()
  mean = (epoch_ends[-1] - epoch_ends[0]) / (len(epoch_ends) - 1)
  return {
    "steps_per_second": steps_per_epoch / mean,
    "epoch_seconds_mean": mean,
    "epoch_seconds_median": statistics.median(diffs),
  }


def _optimizer(config, steps_per_epoch: int):
  lr_fn = optimizers.create_schedule(
    config.optim, total_steps=steps_per_epoch * config.train.epochs, steps_per_epoch=steps_per_epoch
  )
  return lr_fn, optimizers.create_optimizer(config.optim, lr_fn)


# --------------------------------------------------------------------------------------------------
# Per-step loop (flax examples)


def _per_step_programs(model, dropout_stream):
  @jax.jit
  def train_step(state, images, labels):
    def loss_fn(params):
      key = jax.random.fold_in(dropout_stream, state.step)
      logits = state.apply_fn({"params": params}, images, train=True, rngs={"dropout": key})
      return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean(), logits

    (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    accuracy = jnp.mean(jnp.argmax(logits, -1) == labels)
    return state.apply_gradients(grads=grads), loss, accuracy

  @jax.jit
  def eval_step(params, images, labels):
    logits = model.apply({"params": params}, images, train=False)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return loss, jnp.mean(jnp.argmax(logits, -1) == labels)

  return train_step, eval_step


def per_step_run(config, arrays) -> dict:
  """Trains `config`'s model the flax-examples way (see the module docstring); timings and metrics."""
  train_x, train_y, test_x, test_y, num_classes = arrays
  batch_size, epochs = config.train.batch_size, config.train.epochs
  steps_per_epoch = train_x.shape[0] // batch_size
  _, tx = _optimizer(config, steps_per_epoch)
  model = models.create_model(config.model, output_dim=num_classes)
  streams = rng.streams(config)  # same init as jaxflow; dropout keys from its stream too
  init_start = time.perf_counter()
  params = jax.jit(model.init)(streams["init"], jnp.zeros((1, *train_x.shape[1:]), jnp.float32))["params"]
  state = train_state.TrainState.create(apply_fn=model.apply, params=params, tx=tx)
  # TrainState.create starts `step` as the Python int 0; the step returns an int32 array, so the second
  # call would retrace and compile again (flax's mnist example pays that too). Start from an array.
  state = jax.block_until_ready(state.replace(step=jnp.asarray(0, jnp.int32)))
  init_s = time.perf_counter() - init_start
  train_step, eval_step = _per_step_programs(model, streams["dropout"])
  np_rng = np.random.RandomState(config.seed)
  epoch_ends, first = [], {}
  for epoch in range(epochs):
    perms = np_rng.permutation(train_x.shape[0])[: steps_per_epoch * batch_size].reshape(steps_per_epoch, batch_size)
    step_losses, step_accuracies = [], []
    for perm in perms:
      t = time.perf_counter()
      state, loss, accuracy = train_step(state, train_x[perm], train_y[perm])
      if "train" not in first:  # first call = trace + compile (+ one step): its time is the compile time
        jax.block_until_ready(loss)
        first["train"] = time.perf_counter() - t
      step_losses.append(loss)
      step_accuracies.append(accuracy)
    train_loss, _ = (float(np.mean(v)) for v in jax.device_get((step_losses, step_accuracies)))
    t = time.perf_counter()
    test_loss, test_accuracy = jax.block_until_ready(eval_step(state.params, test_x, test_y))
    first.setdefault("eval", time.perf_counter() - t)
    epoch_ends.append(time.perf_counter())  # the epoch's eval metrics are on the host
  return {
    **steady_rate(epoch_ends, steps_per_epoch),
    "compile_seconds": first["train"] + first["eval"],
    "compile_and_init_seconds": init_s + first["train"] + first["eval"],
    "steps": int(jax.device_get(state.step)),
    "final_test_accuracy": float(test_accuracy),
    "final_train_loss": train_loss,
    "train_step_compilations": train_step._cache_size(),
  }


# --------------------------------------------------------------------------------------------------
# Fused ceilings: jaxflow's pure step as one lax.scan per epoch


def _setup(config):
  problem = validate(config)
  streams = rng.streams(config)
  data = device_data(config, problem, streams)
  steps_per_epoch = problem.train_size // config.train.batch_size
  lr_fn, tx = _optimizer(config, steps_per_epoch)
  model = models.create_model(config.model, output_dim=problem.output_dim)
  return problem, streams, data, steps_per_epoch, lr_fn, state_lib.init_fn(model, tx, problem.input_structure)


def _aot(fn, *args):
  """(compiled executable, seconds to lower and compile it)."""
  start = time.perf_counter()
  compiled = jax.jit(fn).lower(*args).compile()
  return compiled, time.perf_counter() - start


def scan_run(config) -> dict:
  """The bare scan epoch (see the module docstring): shuffle + every step in one program, no evaluation."""
  problem, streams, data, steps_per_epoch, lr_fn, init = _setup(config)
  batch_size = config.train.batch_size
  step_fn = functools.partial(steps.train_step, loss_name=problem.loss, kind=problem.kind, lr_fn=lr_fn)

  def epoch_fn(state, inputs, labels, data_stream, dropout_stream, epoch):
    indices = steps.epoch_indices(
      data_stream, epoch, num_examples=problem.train_size, steps=steps_per_epoch, batch_size=batch_size
    )
    return steps.train_chunk(
      state, inputs, labels, indices, jnp.int32(0), dropout_stream, num_steps=steps_per_epoch, step_fn=step_fn
    )

  init_program, init_compile_s = _aot(init, streams["init"])
  start = time.perf_counter()
  state = jax.block_until_ready(init_program(streams["init"]))
  init_run_s = time.perf_counter() - start
  args = (data.train_inputs, data.train_labels, streams["data"], streams["dropout"])
  program, compile_s = _aot(epoch_fn, state, *args, np.int32(0))
  epoch_ends = []
  for epoch in range(config.train.epochs):
    state, metrics = jax.block_until_ready(program(state, *args, np.int32(epoch)))
    epoch_ends.append(time.perf_counter())
  return {
    **steady_rate(epoch_ends, steps_per_epoch),
    "compile_seconds": compile_s,
    "compile_and_init_seconds": init_compile_s + init_run_s + compile_s,
    "steps": int(jax.device_get(state.step)),
    "final_train_loss": float(metrics["loss"][-1] / metrics["count"][-1]),
  }


def scan_eval_run(config) -> dict:
  """jaxflow's fused epoch program (shuffle + scan + eval) dispatched back to back (module docstring)."""
  problem, streams, data, steps_per_epoch, lr_fn, init = _setup(config)
  progs = programs_lib.Programs(
    problem=problem, batch_size=config.train.batch_size, lr_fn=lr_fn, steps_per_epoch=steps_per_epoch, unroll=1
  )
  start = time.perf_counter()
  state = jax.block_until_ready(progs.init_state(init, streams["init"]))
  init_s = time.perf_counter() - start
  init_compile_s = progs.compile_seconds
  epoch_ends = []
  for epoch in range(config.train.epochs):
    state, packed = jax.block_until_ready(progs.epoch(state, data, streams, epoch))
    epoch_ends.append(time.perf_counter())  # includes the epoch program's compile in epoch 1
  _, eval_sums = progs.unpack_epoch(packed)  # after the timing: the last epoch's accuracy, for the table
  return {
    **steady_rate(epoch_ends, steps_per_epoch),
    "compile_seconds": progs.compile_seconds - init_compile_s,
    "compile_and_init_seconds": init_s + progs.compile_seconds - init_compile_s,
    "steps": int(jax.device_get(state.step)),
    "final_test_accuracy": losses.finalize_metrics(eval_sums)["accuracy"],
  }


# --------------------------------------------------------------------------------------------------
# Keras 3 fit on JAX


def keras_unavailable() -> str | None:
  """Why the Keras contender cannot run here (None: it can). Must be asked before anything imports keras."""
  backend = os.environ.setdefault("KERAS_BACKEND", "jax")  # before `import keras`, else it imports TensorFlow
  if backend != "jax":
    return f"KERAS_BACKEND={backend} (not jax)"
  try:
    import keras  # deferred: optional benchmark dependency (the `bench` extra), heavy
  except ImportError:
    return "not installed"
  if keras.backend.backend() != "jax":  # imported earlier in this process with another backend
    return f"keras runs on {keras.backend.backend()}"
  return None


def keras_run(config, arrays) -> dict:
  """Keras 3 `fit` on JAX, the same MLP and work (see the module docstring); timings and metrics."""
  import keras  # deferred: optional benchmark dependency, checked by keras_unavailable()

  train_x, train_y, test_x, test_y, num_classes = arrays
  batch_size = config.train.batch_size
  steps_per_epoch = train_x.shape[0] // batch_size
  keras.utils.set_random_seed(config.seed)
  layers = [keras.Input(train_x.shape[1:]), keras.layers.Flatten()]
  layers += [keras.layers.Dense(w, activation="relu") for w in config.model.widths]
  model = keras.Sequential([*layers, keras.layers.Dense(num_classes)])
  model.compile(
    optimizer=keras.optimizers.Adam(config.optim.lr),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
  )
  clock = _KerasClock(keras)
  n = steps_per_epoch * batch_size
  history = model.fit(
    train_x[:n],
    train_y[:n],
    batch_size=batch_size,
    epochs=config.train.epochs,
    validation_data=(test_x, test_y),
    callbacks=[clock.callback],
    verbose=0,
  )
  rate = steady_rate(clock.epoch_ends, steps_per_epoch)
  first_epoch = clock.epoch_ends[0] - clock.begin
  return {
    **rate,
    # Keras compiles inside its first epoch: that epoch's time minus a steady epoch's (an estimate).
    "compile_seconds": first_epoch - rate["epoch_seconds_median"],
    "compile_and_init_seconds": first_epoch - rate["epoch_seconds_median"],
    "steps": steps_per_epoch * config.train.epochs,
    "final_test_accuracy": float(history.history["val_accuracy"][-1]),
    "final_train_loss": float(history.history["loss"][-1]),
    "keras": keras.__version__,
  }


class _KerasClock:
  """A Keras callback's timestamps: the start of `fit`'s training and every epoch's end (after validation)."""

  def __init__(self, keras):
    self.begin, self.epoch_ends = None, []
    clock = self

    class Clock(keras.callbacks.Callback):
      def on_train_begin(self, logs=None):
        clock.begin = time.perf_counter()

      def on_epoch_end(self, epoch, logs=None):
        clock.epoch_ends.append(time.perf_counter())

    self.callback = Clock()
