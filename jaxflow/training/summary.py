"""What a summary records about where a run ran: devices and library versions."""

from __future__ import annotations

import platform
from importlib import metadata

import jax

PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "tensorflow-datasets", "numpy")


def package_versions(names) -> dict[str, str | None]:
  """Python's and each named distribution's version (None when it is not installed)."""
  versions = {"python": platform.python_version()}
  for name in names:
    try:
      versions[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
      versions[name] = None
  return versions


def cpu_model() -> str | None:
  """The CPU's model name (from /proc/cpuinfo on Linux), None where nothing says it."""
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or None


def environment(*, mode: str = "single", used: int = 1) -> dict:
  """`count` is the devices JAX sees; `used` the ones its parallel mode trained on, over all processes."""
  devices = jax.devices()
  versions = package_versions(PACKAGES)
  return {
    "device": {
      "platform": devices[0].platform,
      "kind": devices[0].device_kind,
      "count": len(devices),
      "used": used,
      "mode": mode,
      "process_count": jax.process_count(),
    },
    "versions": versions,
  }
