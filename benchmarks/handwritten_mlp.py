"""A minimal hand-written flax + optax script: the digits MLP a researcher would write without jaxflow.

  python benchmarks/handwritten_mlp.py --epochs 30

The yardstick of benchmarks/cold_start.py: the same model as configs/digits_mlp.py (256-256, relu,
dropout 0.1), Adam 3e-3 with 20 warm-up steps into a cosine decay, batch 128, the same number of epochs,
scikit-learn's digits with the same 1437/360 stratified split, one jitted step per batch, one evaluation
per epoch, the test accuracy printed at the end. No logs, no checkpoints, no compilation cache.
"""

from __future__ import annotations

import argparse
import time

start = time.perf_counter()

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402


class MLP(nn.Module):
  @nn.compact
  def __call__(self, x, train: bool):
    x = x.reshape((x.shape[0], -1))
    for width in (256, 256):
      x = nn.relu(nn.Dense(width)(x))
      x = nn.Dropout(0.1, deterministic=not train)(x)
    return nn.Dense(10)(x)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--epochs", type=int, default=30)
  args = parser.parse_args()
  digits = load_digits()
  x = (digits.images / 16.0).astype(np.float32)[..., None]
  x_train, x_test, y_train, y_test = train_test_split(
    x, digits.target.astype(np.int32), test_size=360, stratify=digits.target, random_state=0
  )
  batch, steps = 128, len(x_train) // 128
  schedule = optax.warmup_cosine_decay_schedule(0.0, 3e-3, 20, steps * args.epochs)
  tx = optax.adam(schedule)
  model = MLP()
  params = model.init(jax.random.key(0), x_train[:1], train=False)["params"]
  opt_state = tx.init(params)

  @jax.jit
  def train_step(params, opt_state, xb, yb, key):
    def loss_fn(p):
      logits = model.apply({"params": p}, xb, train=True, rngs={"dropout": key})
      return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  @jax.jit
  def accuracy(params, xs, ys):
    return jnp.mean(jnp.argmax(model.apply({"params": params}, xs, train=False), -1) == ys)

  rng = np.random.default_rng(0)
  key = jax.random.key(1)
  for epoch in range(args.epochs):
    order = rng.permutation(len(x_train))
    for i in range(steps):
      rows = order[i * batch : (i + 1) * batch]
      params, opt_state, loss = train_step(
        params, opt_state, x_train[rows], y_train[rows], jax.random.fold_in(key, epoch * steps + i)
      )
    test_accuracy = float(accuracy(params, x_test, y_test))
  print(f"test accuracy {test_accuracy:.4f}, {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
  main()
