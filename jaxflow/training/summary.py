"""What a summary records about where a run ran: devices and library versions."""

from __future__ import annotations

import platform
from importlib import metadata

import jax

PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "tensorflow-datasets", "numpy")


def environment(*, mode: str = "single", used: int = 1) -> dict:
  """`count` is the devices JAX sees; `used` the ones its parallel mode trained on, over all processes."""
  devices = jax.devices()
  versions = {"python": platform.python_version()}
  for name in PACKAGES:
    try:
      versions[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
      versions[name] = None
  return {
      "device": {"platform": devices[0].platform, "kind": devices[0].device_kind, "count": len(devices), "used": used, "mode": mode,
                 "process_count": jax.process_count()},
      "versions": versions,
  }
