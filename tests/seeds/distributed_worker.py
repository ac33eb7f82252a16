"""One process of a `jaxflow seeds` job under jax.distributed, for tests/seeds/test_seeds_distributed.py: the forced
CPU device count must be set before jax is imported.

  python tests/seeds/distributed_worker.py DEVICES PROCESS_ID NUM_PROCESSES PORT WORKDIR [JAXFLOW SEEDS FLAGS...]

Runs `jaxflow seeds` through the command line's main with config.parallel's coordinator fields, then prints one
JSON object on its last stdout line: the exit status, the devices this job sees, where `devices` mode would put a
few seed counts that do not divide over them (no training: the placement rule alone), and the refusals of what
cannot run over several processes (--mode=vmap, --check_determinism, --executor=ray). The first flag must be
--config=FILE.
"""

from __future__ import annotations

import json
import os
import sys

DEVICES, PROCESS_ID, NUM_PROCESSES, PORT, WORKDIR = sys.argv[1:6]
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={DEVICES}"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from jaxflow import cli  # noqa: E402

job = [
  f"--config.parallel.coordinator=127.0.0.1:{PORT}",
  f"--config.parallel.num_processes={NUM_PROCESSES}",
  f"--config.parallel.process_id={PROCESS_ID}",
]
code = cli.main(["jaxflow", "seeds", *sys.argv[6:], *job, f"--workdir={WORKDIR}"])

import jax  # noqa: E402  (initialized by the study above)

import jaxflow  # noqa: E402
from jaxflow.config import ConfigError  # noqa: E402
from jaxflow.seeds import distributed, mode_choice  # noqa: E402

placement = {
  seeds: {
    "processes": sorted({d.process_index for d in mode_choice.seed_devices(seeds)}),
    "devices": len(mode_choice.seed_devices(seeds)),
    "note": mode_choice.devices_note(seeds),
  }
  for seeds in (6, 2, 5)
}
refusals = {}  # what cannot run over several processes, refused in one line (join is a no-op once joined)
config = jaxflow.load_config(sys.argv[6].split("=", 1)[1])
for name, mode, determinism, executor in (
  ("vmap", "vmap", False, "local"),
  ("determinism", "devices", True, "local"),
  ("ray", "devices", False, "ray"),
):
  try:
    distributed.join(config, mode=mode, check_determinism=determinism, executor=executor)
  except ConfigError as e:
    refusals[name] = str(e)
out = {"exit": code, "devices": jax.device_count(), "processes": jax.process_count(), "placement": placement}
print(json.dumps({**out, "refusals": refusals}))
