"""jaxflow: config-driven, measurable JAX experiments.

The Python API is the CLI's twin: `jaxflow train --config=F --workdir=W` calls `jaxflow.train(config, W)`.
Heavy imports (jax, flax, tfds) happen on first use, so `import jaxflow` and `jaxflow --help` stay quick.
"""

from jaxflow.config import ConfigError, load_config

__version__ = "0.1.0"


def train(config, workdir: str, *, quiet: bool = False) -> dict:
  """Trains `config` (a ConfigDict) in `workdir`, resuming a previous run there; returns the summary."""
  from jaxflow.run.train import train_and_evaluate

  return train_and_evaluate(config, workdir, quiet=quiet)


def audit(config, workdir: str) -> dict:
  """Audits the dataset `config` describes (as training would see it) into `workdir`; returns the report."""
  from jaxflow.auditing import run_audit

  return run_audit(config, workdir)


def explain(workdir: str, **kw) -> dict:
  """Pictures and sanity checks of the trained run in `workdir` (`jaxflow explain`); returns out, page, report paths."""
  from jaxflow.inspect.explain import run_explain

  return run_explain(workdir, **kw)


def tune(config, workdir: str, **kw) -> dict:
  """Hyperparameter search over `space=` (a file or a Space) in `workdir`; returns the report (jaxflow.tuning.study)."""
  from jaxflow.tuning.study import run_tune

  return run_tune(config, workdir, **kw)


def profile(config, workdir: str, **kw) -> dict:
  """Profiles `config`'s model on every device into `workdir` (`jaxflow profile`); returns the report."""
  from jaxflow.profiler.run import run_profile

  return run_profile(config, workdir, **kw)


__all__ = ["ConfigError", "audit", "explain", "load_config", "profile", "train", "tune"]
