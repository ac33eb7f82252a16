r"""Search space for configs/digits_mlp.py (`jaxflow tune`).

  jaxflow tune --config=configs/digits_mlp.py --space=configs/spaces/digits_mlp.py --method=bo --trials=30 \
    --workdir=runs/tune

Eight parameters: the learning rate (log scale), the optimizer (Adam, or SGD with momentum, whose
momentum is a conditional: drawn only for it; jaxflow's plain `sgd` has no momentum), dropout, batch
size (log scale), epochs, and the network's depth and width, which are not config fields themselves:
`derive` turns them into `model.widths`. `get_space("small")` is a 3-parameter space for quick tests.
"""

from jaxflow.tuning import space

VARIANTS = ("small",)  # `FILE:small`; no variant: the full space. jaxflow refuses any other variant


def get_space(variant: str = ""):
  if variant == "small":
    return space.Space(
      space.log_uniform("optim.lr", 1e-3, 3e-2),
      space.uniform("model.dropout_rate", 0.0, 0.3),
      space.integer("train.batch_size", 64, 256, log=True),
    )
  return space.Space(
    space.log_uniform("optim.lr", 1e-4, 1e-1),
    space.categorical("optim.name", ["adam", "momentum"]),
    space.uniform("optim.momentum", 0.5, 0.99, when={"optim.name": "momentum"}),
    space.uniform("model.dropout_rate", 0.0, 0.5),
    space.integer("train.batch_size", 32, 256, log=True),
    space.integer("train.epochs", 5, 30),
    space.integer("layers", 1, 3),
    space.categorical("width", [64, 128, 256]),
    derive=lambda p: {"model.widths": (p["width"],) * p["layers"]},
  )
