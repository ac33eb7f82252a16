r"""Search space of the tuning study's digits MLP (`jaxflow tune --space=experiments/tuning/space.py`).

Three parameters a practitioner tunes first: the learning rate, the weight decay (L2 on the kernels with Adam) and
the dropout rate. Why only these (and not the width): they leave the model's shapes alone, while a width changes the
program and its initializer (measured: 12 trials with the width as a fourth parameter took ~95 CPU-s per study).
They are not run-time values of jaxflow's compiled training program, though (measured at 4ba1051: a second
`jaxflow.train` with another `optim.lr` recompiles its epoch program, ~2.4 CPU-s): each trial of a one-trial-a-round
study compiles its own; the trials of one round (`batch` > 1) share one vmapped program.
"""

from jaxflow.tuning import space

VARIANTS = ()


def get_space():
  return space.Space(
    space.log_uniform("optim.lr", 1e-4, 3e-1),
    space.log_uniform("optim.weight_decay", 1e-6, 1e-1),
    space.uniform("model.dropout_rate", 0.0, 0.6),
  )
