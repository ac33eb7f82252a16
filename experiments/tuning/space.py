r"""Search space of the tuning study's digits MLP (`jaxflow tune --space=experiments/tuning/space.py`).

Three parameters a practitioner tunes first: the learning rate, the weight decay (L2 on the kernels with Adam) and
the dropout rate. Why only these (and not the width): they are run-time values of jaxflow's compiled training
program, so every trial of a study reuses one program and the study's cost is the training, not compiles; a width
changes the program (measured: 12 trials with the width as a fourth parameter took ~95 CPU-s per study).
"""

from jaxflow.tuning import space

VARIANTS = ()


def get_space():
  return space.Space(
    space.log_uniform("optim.lr", 1e-4, 3e-1),
    space.log_uniform("optim.weight_decay", 1e-6, 1e-1),
    space.uniform("model.dropout_rate", 0.0, 0.6),
  )
