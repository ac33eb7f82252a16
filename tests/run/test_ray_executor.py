"""`--executor=ray`: tune and seeds studies as tasks on a real local Ray cluster, one of its workers killed.

One cluster for the module: a head node and a second node (`ray start --block`, each its own raylet with one
CPU, so two tasks run at once, one per node), started with a tag in their environment so teardown stops exactly
the processes this file started (not every Ray process of the user, as `ray stop` would). Each study runs on it
while a watcher SIGKILLs the Ray worker process that holds a run's workdir lock (the pid the lock names); the
study must complete with that task retried (the workdir's tasks.json shows a second attempt of the same task by
another process) and leave the records of the same study run locally.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

import jaxflow
from jaxflow import cli
from jaxflow.run import executors
from jaxflow.tuning import space as S
from jaxflow.workdir import read_json, read_summary
from tests.conftest import config_path, merge_overrides

MLP = config_path("digits_mlp.py")
TINY = ["model.widths=(32,)", "train.epochs=2", "train.histogram_every=1000", "train.class_report_every=1000"]
LR_SPACE = S.Space(S.log_uniform("optim.lr", 1e-3, 1e-1))
TAG = "JFTEST_RAY_CLUSTER"  # in the environment of every process of the test cluster (raylets, workers, agents)
RAY = os.path.join(os.path.dirname(sys.executable), "ray")


def tiny(*overrides):
  return jaxflow.load_config(MLP, merge_overrides(*TINY, *overrides))


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def tagged_pids(tag: str) -> list[int]:
  """The processes whose environment carries this cluster's tag: the ones this file started, and nothing else."""
  pids = []
  for path in glob.glob("/proc/[0-9]*/environ"):
    try:
      with open(path, "rb") as f:
        if f"{TAG}={tag}".encode() in f.read().split(b"\0"):
          pids.append(int(path.split("/")[2]))
    except OSError:
      continue
  return pids


class CpuMeter(threading.Thread):
  """The CPU seconds (user + system) of the cluster's processes, sampled every half second (the last sample of
  each process: Ray's raylets do not wait for their workers, so a dead worker's time reaches no parent)."""

  def __init__(self, tag: str):
    super().__init__(daemon=True)
    self.tag, self.done, self.seen = tag, threading.Event(), {}

  def run(self) -> None:
    while not self.done.wait(0.5):
      for pid in tagged_pids(self.tag):
        try:
          with open(f"/proc/{pid}/stat") as f:
            ticks = sum(int(v) for v in f.read().rsplit(")", 1)[1].split()[11:13])
        except OSError:
          continue
        self.seen[pid] = max(ticks, self.seen.get(pid, 0))

  def seconds(self) -> float:
    self.done.set()
    self.join()
    return sum(self.seen.values()) / os.sysconf("SC_CLK_TCK")


def stop_cluster(tag: str, starters: list[subprocess.Popen]) -> None:
  for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
    for pid in tagged_pids(tag):
      try:
        os.kill(pid, sig)
      except ProcessLookupError:
        pass
    deadline = time.monotonic() + wait
    while tagged_pids(tag) and time.monotonic() < deadline:
      time.sleep(0.2)
  for p in starters:
    try:
      p.wait(timeout=5)
    except subprocess.TimeoutExpired:
      pass


def wait_for(condition, timeout: float, what: str) -> None:
  deadline = time.monotonic() + timeout
  while not condition():
    if time.monotonic() > deadline:
      raise TimeoutError(what)
    time.sleep(0.2)


@pytest.fixture(scope="module")
def cluster():
  """HOST:PORT of a two-node Ray cluster on this machine (Ray puts its nodes on the machine's own address,
  not 127.0.0.1: `ray start` resolves a loopback --node-ip-address away; the driver connects through 127.0.0.1).
  --temp-dir is a short folder of its own: Ray's socket paths under pytest's tmp_path go past the 107-byte limit."""
  temp = tempfile.mkdtemp(prefix="jfray", dir="/tmp")
  port = free_port()
  env = {**os.environ, TAG: temp, "RAY_USAGE_STATS_ENABLED": "0"}
  common = ["--num-cpus=1", "--object-store-memory=80000000", "--disable-usage-stats", "--block"]
  head_cmd = [RAY, "start", "--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp}", *common]
  starters, meter, start = [], CpuMeter(temp), time.monotonic()
  meter.start()
  try:
    for name, cmd in (("head", head_cmd), ("node", [RAY, "start", f"--address=127.0.0.1:{port}", *common])):
      log = open(os.path.join(temp, f"{name}.log"), "w")
      starters.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
      if name == "head":
        wait_for(lambda: _answers(port), 60, "the Ray head did not open its port")
    raylets = lambda: sum("raylet" in _cmdline(pid) for pid in tagged_pids(temp))  # noqa: E731
    wait_for(lambda: raylets() == 2, 60, "two raylets did not start")
    _wait_for_cpus(f"127.0.0.1:{port}", 2, 60)
    print(f"test Ray cluster: started in {time.monotonic() - start:.1f} s")  # pytest -s shows these lines
    yield f"127.0.0.1:{port}", temp
  finally:
    stop_cluster(temp, starters)
    print(f"test Ray cluster: {meter.seconds():.1f} CPU-s in its processes, {time.monotonic() - start:.0f} s up")
    leftover = tagged_pids(temp)
    shutil.rmtree(temp, ignore_errors=True)
    assert not leftover, f"test cluster processes left running: {leftover}"


def _wait_for_cpus(address: str, cpus: int, timeout: float) -> None:
  """Until the cluster counts both nodes' CPUs: a raylet process runs a moment before its node registers, and a
  study joining then sees one slot (CI saw a tune study run one trial per round)."""
  import ray

  try:
    ray.init(address=address, logging_level="WARNING", log_to_driver=False)
    wait_for(lambda: ray.cluster_resources().get("CPU", 0) >= cpus, timeout, f"the cluster did not count {cpus} CPUs")
  finally:
    ray.shutdown()


def _answers(port: int) -> bool:
  try:
    socket.create_connection(("127.0.0.1", port), timeout=1).close()
    return True
  except OSError:
    return False


def _cmdline(pid: int) -> str:
  try:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
      return f.read().decode(errors="replace")
  except OSError:
    return ""


class Killer(threading.Thread):
  """SIGKILLs, once, the first process other than this one that holds a run workdir's lock below `root`
  (`root/*/*/`: trials/trial_0000, all/seed_000) while that run has no summary yet: a Ray worker mid-task."""

  def __init__(self, root: str):
    super().__init__(daemon=True)
    self.root, self.done, self.killed = root, threading.Event(), None

  def run(self) -> None:
    while not self.done.is_set() and self.killed is None:
      for lock in glob.glob(os.path.join(self.root, "*", "*", ".jaxflow.lock")):
        try:
          pid = json.loads(open(lock).read() or "{}").get("pid")
        except (OSError, ValueError):
          continue
        workdir = os.path.dirname(lock)
        if pid and pid != os.getpid() and not os.path.exists(os.path.join(workdir, "summary.json")):
          os.kill(pid, signal.SIGKILL)
          self.killed = (pid, workdir)
          break
      time.sleep(0.02)

  def __enter__(self) -> Killer:
    self.start()
    return self

  def __exit__(self, *exc) -> None:
    self.done.set()
    self.join()


def assert_retried(killed: tuple[int, str]) -> None:
  """The killed task's workdir: a second attempt of the same Ray task, by another process, and a finished run."""
  pid, workdir = killed
  records = executors.attempts(workdir)
  assert len(records) >= 2, records
  first, last = next(r for r in records if r["pid"] == pid), records[-1]
  assert last["task_id"] == first["task_id"] and last["attempt"] == first["attempt"] + 1 and last["pid"] != pid
  assert read_summary(workdir)["status"] == "completed"


def test_bad_executor_flags_exit_2_with_one_line_and_write_nothing(tmp_path, capsys, monkeypatch):
  workdir = tmp_path / "study"
  closed = f"127.0.0.1:{free_port()}"
  for flags, says in (
    (["--executor=spark"], "--executor='spark' is not known; allowed: local, ray"),
    ([f"--address={closed}"], f"--address={closed} needs --executor=ray (allowed: --executor=local | ray)"),
    (["--executor=ray", "--address=nohost"], "--address=nohost must be HOST:PORT of a Ray cluster's head"),
    (["--executor=ray", f"--address={closed}"], f"--address={closed}: no Ray cluster answers there"),
  ):
    for verb in (["seeds", "--seeds=2"], ["tune", "--space=configs/spaces/digits_mlp.py", "--trials=2"]):
      assert cli.main(["jaxflow", *verb, f"--config={MLP}", f"--workdir={workdir}", *flags]) == 2
      err = capsys.readouterr().err.strip()
      assert says in err and len(err.splitlines()) == 1, err
      assert not workdir.exists()
  monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as without the extra
  with pytest.raises(jaxflow.ConfigError, match=r"^--executor=ray needs the ray extra: pip install 'jaxflow\[ray\]'$"):
    executors.check("ray", "127.0.0.1:6379")


def _trial_rows(report: dict) -> list[dict]:
  return [{k: r[k] for k in ("index", "status", "params", "group", "workdir")} for r in report["trials"]]


@pytest.mark.slow
def test_tune_on_ray_survives_a_killed_worker_and_matches_a_local_study(tmp_path, cluster):
  address, _ = cluster
  config = tiny()
  given = {"space": LR_SPACE, "method": "sobol", "trials": 3}
  local = jaxflow.tune(config, str(tmp_path / "local"), batch=1, **given)
  with Killer(str(tmp_path / "ray")) as killer:
    remote = jaxflow.tune(config, str(tmp_path / "ray"), executor="ray", address=address, **given)
  assert killer.killed, "no worker was caught mid-run"
  assert_retried(killer.killed)
  assert remote["counts"] == local["counts"] == {**local["counts"], "completed": 3}
  assert remote.keys() == local.keys() and remote["settings"]["batch"] == 2  # a round fills both nodes
  assert _trial_rows(remote) == _trial_rows(local)
  assert [r["value"] for r in remote["trials"]] == pytest.approx([r["value"] for r in local["trials"]], abs=1e-6)
  for row in remote["trials"]:
    records = [
      read_json(os.path.join(tmp_path, d, "trials", row["workdir"].split("/")[-1], "trial.json"))
      for d in ("local", "ray")
    ]
    assert records[0].keys() == records[1].keys()
  nodes = {r["node_id"] for t in glob.glob(str(tmp_path / "ray" / "trials" / "*")) for r in executors.attempts(t)}
  assert len(nodes) == 2  # both nodes trained trials


@pytest.mark.slow
def test_seeds_on_ray_survives_a_killed_worker_and_matches_a_local_study(tmp_path, cluster, capsys):
  address, _ = cluster
  args = [f"--config={MLP}", *(f"--config.{o}" for o in TINY), "--seeds=4", "--vary=init", "--quiet"]
  assert cli.main(["jaxflow", "seeds", *args, f"--workdir={tmp_path / 'local'}", "--mode=sequential"]) == 0
  with Killer(str(tmp_path / "ray")) as killer:
    argv = ["jaxflow", "seeds", *args, f"--workdir={tmp_path / 'ray'}", "--executor=ray", f"--address={address}"]
    assert cli.main(argv) == 0
  capsys.readouterr()
  assert killer.killed, "no worker was caught mid-run"
  assert_retried(killer.killed)
  local, remote = (read_json(str(tmp_path / d / "report.json")) for d in ("local", "ray"))
  assert remote.keys() == local.keys() and remote["mode"]["mode"] == "sequential"
  (sweep_l,), (sweep_r,) = local["sweeps"], remote["sweeps"]
  assert [s.keys() for s in sweep_r["seeds"]] == [s.keys() for s in sweep_l["seeds"]]
  names = [
    os.path.relpath(s["workdir"], tmp_path / d) for d, sw in (("local", sweep_l), ("ray", sweep_r)) for s in sw["seeds"]
  ]
  assert names[:4] == names[4:] == [f"init/seed_{i:03d}" for i in range(4)]
  for d in ("local", "ray"):
    assert all(read_summary(str(tmp_path / d / n))["status"] == "completed" for n in names[:4])
  final = lambda sweep: [s["final"] for s in sweep["seeds"]]  # noqa: E731
  assert final(sweep_r) == pytest.approx(final(sweep_l), abs=1e-6)
  assert sweep_r["final"]["mean"] == pytest.approx(sweep_l["final"]["mean"], abs=1e-6)
  chunks = {r["task_id"] for n in names[4:] for r in executors.attempts(str(tmp_path / "ray" / n))}
  assert len(chunks) == 2  # 4 seeds, 2 slots: two tasks of two seeds
