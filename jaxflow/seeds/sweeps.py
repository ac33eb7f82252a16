"""Which seeds a study trains: the sources it varies, and each seed's config.

Run i of a sweep sets `config.seeds.<name> = config.seed + i` for every stream it varies (`vary`: any of
jaxflow's PRNG streams, `all` or `none`); the other streams stay as the config has them, so a sweep that
varies `init` trains the same data order and dropout masks every time. Each seed is a normal run workdir:
`WORKDIR/<sweep>/seed_000/`.
"""

from __future__ import annotations

import os

import ml_collections

from jaxflow import rng
from jaxflow.config import ConfigError

SOURCES = rng.STREAM_NAMES  # every source of randomness a study can vary (`all`)
# Perturbations a sweep may vary besides the streams (`--vary=one_bit`); never part of `all`: a plain run has none.
PERTURBATIONS = rng.PERTURBATIONS
# What --study=sources sweeps one by one: every stream the config draws from (the others are listed as not
# used), then one_bit (the smallest change of a run: one bit of one initial weight), then all and none.
STUDY_SOURCES = SOURCES


def parse_vary(vary: str | tuple) -> tuple[str, ...]:
  """'init,data' / ('init', 'data') / 'all' / 'none' -> the streams varied; ConfigError otherwise."""
  names = tuple(v.strip() for v in (vary.split(",") if isinstance(vary, str) else vary) if v.strip())
  if names in (("all",), ()):
    return SOURCES
  if names == ("none",):
    return ()
  unknown = [n for n in names if n not in SOURCES + PERTURBATIONS]
  if unknown:
    raise ConfigError(
      f"--vary={','.join(names)}: {unknown[0]!r} is not a PRNG stream; allowed: "
      f"{', '.join(SOURCES + PERTURBATIONS)}, all, none"
    )
  return names


def active_sources(config: ml_collections.ConfigDict) -> dict[str, bool]:
  """Which streams this config actually draws from (a stream it never reads cannot vary anything)."""
  d = config.data
  return {
    "init": True,
    "data": True,
    "dropout": bool(config.model.dropout_rate),
    "augment": bool(d.augment),
    "noise": d.label_noise.kind == "matrix" or d.label_noise.rate > 0,
    "sampler": d.sampler == "oversample",
  }


def seed_config(config: ml_collections.ConfigDict, index: int, vary: tuple[str, ...]) -> ml_collections.ConfigDict:
  """Run `index` of a sweep: the varied streams pinned to config.seed + index, the others as given. `one_bit`
  is not among the config's streams (configs/base.py): it is added to `config.seeds` here, and a run with it
  set starts from its init with one bit flipped (run.assemble.one_bit_perturbed)."""
  run = config.copy_and_resolve_references()
  with run.unlocked():  # the CLI locks its config; one_bit is a field the config may not have yet
    for name in vary:
      run.seeds[name] = config.seed + index
  return run


def seed_workdir(workdir: str, sweep: str, index: int) -> str:
  return os.path.join(workdir, sweep, f"seed_{index:03d}")
