"""`jaxflow seeds` over several processes (jax.distributed): the seed axis over every process's devices.

Started like multi-host `jaxflow train`: the same command in every process, with `config.parallel.coordinator`,
`num_processes` and `process_id` (or the JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID
variables, or `parallel.detect_cluster=True` under SLURM). Then `devices` mode (what `auto` picks without
timing: each process would time its own candidates and might pick another) is ONE vmapped program whose run
axis spans `jax.devices()`: every process builds the same stacked initial state and streams on its host and
hands over only its devices' shards (`training.parallel.put`); the per-run metrics each epoch are all-gathered
(`training.parallel.fetch`), so every process keeps every seed's records and they stop, checkpoint and finish
together. Seeds need nothing from each other: the program itself has no collective.

Who writes: process 0, as for a multi-host run. It holds the study's lock, writes every seed's workdir (its
RunBooks are the writing ones; each seed's checkpoint is saved from a copy replicated on every device), then
evaluates the seeds and writes report.json / report.md / plots; the other processes return the report
without the spread (their `run_seeds` result has no `spread` entries). The seed workdirs keep the one-run
contract, so a rerun of the same command (with any process count, or in one process) skips the seeds that
finished and resumes the others. Every process must see the same workdir (a filesystem they share, as for
multi-host checkpoints): each process decides which seeds are left to train, and they check that they agree.
"""

from __future__ import annotations

import contextlib
import os

import jax

from jaxflow.config import ConfigError
from jaxflow.run.fields import check_parallel_fields
from jaxflow.training import parallel
from jaxflow.workdir import LOCK_FILE, acquire_lock


def join(config, *, mode: str, check_determinism: bool, executor: str = "local") -> None:
  """Joins the job's processes (a no-op for one process) before anything touches a device, and refuses
  what cannot run over several. A peer that never starts ends this process after
  `parallel.init_timeout_seconds` with one line on stderr (`parallel.initialize_distributed`)."""
  check_parallel_fields(config)
  parallel.initialize_distributed(config.parallel, command="jaxflow seeds")
  if not several():
    return
  processes = jax.process_count()
  if mode == "vmap":
    raise ConfigError(
      f"--mode=vmap stacks every seed on one device of each of the {processes} processes (each would train them "
      "all); use --mode=devices (the seeds over every process's devices), auto (the same) or sequential"
    )
  if executor != "local":
    raise ConfigError(
      f"--executor={executor} trains the seeds as tasks on its cluster; each of the {processes} jax.distributed "
      "processes would submit every seed again: start one process with --executor, or drop it to train over these"
    )
  if check_determinism:
    raise ConfigError(
      f"--check_determinism compares reruns in one process; with {processes} processes run the study, "
      "then the same command with --check_determinism in one process (it reuses the finished seeds)"
    )


several = parallel.several_processes  # one process of several? (never starts a one-process study's backend)


def is_main() -> bool:
  return not several() or jax.process_index() == 0


@contextlib.contextmanager
def study_lock(workdir: str, *, command: str = "jaxflow seeds"):
  """The study workdir's lock, held by process 0 (the one writer); the others hold nothing. With several
  processes every one learns whether process 0 got it: refused, they all stop with one line (the others would
  otherwise wait for process 0 in their first collective and die there, after gloo's 30 s, with a C++ error)."""
  with contextlib.ExitStack() as held:  # process 0's lock, released however this ends
    parallel.run_on_main(
      lambda: held.enter_context(acquire_lock(workdir, command=command)), what=f"the lock of study workdir {workdir}"
    )
    parallel.check_shared([os.path.join(workdir, LOCK_FILE)], what=f"study workdir {workdir}")
    yield


def agree(workdirs: list[str]) -> None:
  """Every process is about to train the same seeds (one program: a process with other seeds would wait for
  its peers forever); a ConfigError in every process otherwise."""
  if parallel.differing_processes("\n".join(workdirs).encode()):
    raise ConfigError(
      f"the {jax.process_count()} processes found different seeds left to train ({len(workdirs)} here): the "
      "workdir must be on a filesystem every process shares, with the same contents"
    )
