"""`jaxflow serve` under load: requests/s and p50/p99 latency, batching off and on, 1, 8 and 64 clients.

  JAXFLOW_DATA_DIR=/tmp/jf_data python benchmarks/serve.py              # ~2-3 min on 2 loaded cores
  python benchmarks/serve.py --quick                                     # smoke check (~1 min)
  python benchmarks/serve.py --model=models/digits_cnn --seconds 10      # an exported model of your own

Without --model, the digits CNN (configs/digits_cnn.py, its 20 epochs) is trained and exported into a
temporary folder first (`jaxflow train`, `jaxflow export`, as subprocesses). Each round starts the server
(`jaxflow serve --port=0`, a subprocess on 127.0.0.1) once per setting, the settings' order alternating
between rounds (A B, B A): batching off (`--batch_window_ms=0`: one request per model call, padded to a
precompiled size) and on (the default window, 2 ms, and batch sizes 1,8,32,128). Against each server, for
1, 8 and 64 concurrent clients: this process runs that many asyncio clients (bare HTTP/1.1 over asyncio
streams, on uvloop when installed: the client's CPU is taken from the server's cores; a keep-alive connection
each), each sending one-example POST /predict requests back to back (a fixed body, different per client)
for `--seconds` after `--warmup` seconds that are not counted. Latency is per request
(send to whole response read), requests/s is the completed requests over the measured seconds; every answer
must be a 200. After each setting the server's /healthz must report no compilation after its warm-up, and
gives the mean batch size (examples per model call).

The clients share the 2 cores with the server, as a local load test does: the absolute numbers are the pair's,
the ratio between the settings is the measurement. Reported per (clients, batching), the medians over rounds;
and at 64 clients the ratio of requests/s (target >= 4x) and of p99 latency (target <= 2x), batching on
against off. Writes benchmarks/results/serve.json (the common payload header, every round's numbers, the
Markdown table).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import common  # noqa: E402

DEFAULT_OUT = os.path.join(ROOT, "benchmarks", "results", "serve.json")
SETTINGS = {"off": ["--batch_window_ms=0"], "on": []}  # "on": serve's defaults (2 ms window, 1,8,32,128)


def cli(*args: str) -> list[str]:
  return [sys.executable, "-m", "jaxflow.cli", *args]


def make_model(scratch: str, quick: bool) -> str:
  """The digits CNN trained and exported into `scratch`; returns the model's folder."""
  workdir, out = os.path.join(scratch, "run"), os.path.join(scratch, "model")
  epochs = ["--config.train.epochs=2"] if quick else []
  common.log("training and exporting the digits CNN (configs/digits_cnn.py)")
  for cmd in (
    cli("train", "--config=configs/digits_cnn.py", f"--workdir={workdir}", "--quiet", *epochs),
    cli("export", f"--workdir={workdir}", f"--out={out}"),
  ):
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
      raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
  return out


class Server:
  """`jaxflow serve` in a subprocess on a free port; `url` from the line it prints once it listens."""

  def __init__(self, model: str, flags: list[str]):
    self.proc = subprocess.Popen(
      cli("serve", f"--model={model}", "--port=0", *flags),
      cwd=ROOT,
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(self.proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout=300)
    if not lines or " at http://" not in lines[0]:
      self.proc.kill()
      raise SystemExit(f"jaxflow serve did not start: {lines} {self.proc.stderr.read()[-2000:]}")
    self.url = lines[0].split(" at ")[1].split()[0]

  def health(self) -> dict:
    with urllib.request.urlopen(self.url + "/healthz", timeout=30) as response:
      return json.loads(response.read())

  def stop(self) -> int:
    self.proc.send_signal(signal.SIGTERM)
    try:
      return self.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
      self.proc.kill()
      return -9


async def _client(url: str, body: bytes, stop_at: float, record, failures: list[str]) -> None:
  """One keep-alive HTTP/1.1 connection posting `body` to /predict back to back until `stop_at`; `record(sent,
  done)` per answered request. A bare asyncio-streams client (status line, Content-Length, body) rather than
  aiohttp's: the load generator shares the cores with the server, and aiohttp's client cost ~150 us of CPU per
  request here, CPU the server then lacks; every answer's status is checked and the first one's JSON read."""
  host, port = url.split("//", 1)[1].rsplit(":", 1)
  reader, writer = await asyncio.open_connection(host, int(port))
  request = (
    f"POST /predict HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
    f"Content-Length: {len(body)}\r\n\r\n"
  ).encode() + body
  checked = False
  try:
    while time.perf_counter() < stop_at:  # not loop.time(): uvloop's clock ticks in whole milliseconds
      sent = time.perf_counter()
      writer.write(request)
      head = await reader.readuntil(b"\r\n\r\n")
      fields = dict(
        line.split(b":", 1) for line in head.split(b"\r\n")[1:] if b":" in line
      )  # header name -> value, as sent
      length = next((int(v) for k, v in fields.items() if k.strip().lower() == b"content-length"), None)
      if length is None:
        failures.append(f"no Content-Length in {head[:200]!r}")
        return
      payload = await reader.readexactly(length)
      if head[9:12] != b"200":
        failures.append(f"{head[9:12].decode()}: {payload[:200]!r}")
      elif not checked:
        checked = "predictions" in json.loads(payload)
        if not checked:
          failures.append(f"no predictions in {payload[:200]!r}")
      record(sent, time.perf_counter())
  finally:
    writer.close()


async def load(url: str, clients: int, seconds: float, warmup: float, input_shape: list[int]) -> dict:
  """`clients` concurrent clients, one-example requests back to back: latencies of those that start after
  `warmup` and end before `warmup + seconds`; requests/s over those seconds."""
  rng = np.random.default_rng(0)
  bodies = [
    json.dumps({"inputs": rng.integers(0, 256, size=[1, *input_shape]).tolist()}).encode() for _ in range(clients)
  ]
  latencies: list[float] = []
  failures: list[str] = []
  start = time.perf_counter()
  measure_from, measure_to = start + warmup, start + warmup + seconds

  def record(sent: float, done: float) -> None:
    if sent >= measure_from and done <= measure_to:
      latencies.append(done - sent)

  await asyncio.gather(*(_client(url, body, measure_to, record, failures) for body in bodies))
  if failures:
    raise SystemExit(f"{len(failures)} requests failed, e.g. {failures[0]}")
  ms = np.array(latencies) * 1000
  return {
    "requests": len(latencies),
    "requests_per_second": len(latencies) / seconds,
    "p50_ms": float(np.percentile(ms, 50)),
    "p99_ms": float(np.percentile(ms, 99)),
    "mean_ms": float(ms.mean()),
  }


def run_clients(coro):
  """The load generator on uvloop when installed (the `serve` extra): cheaper clients leave more of the shared
  cores to the server, in both settings alike."""
  try:
    import uvloop
  except ImportError:
    return asyncio.run(coro)
  return uvloop.run(coro)


def cpu_seconds(pid: int) -> float | None:
  """A process's user + system CPU seconds (Linux /proc; None elsewhere)."""
  try:
    with open(f"/proc/{pid}/stat") as f:
      fields = f.read().rsplit(")", 1)[1].split()
  except OSError:
    return None
  return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_setting(model: str, setting: str, args, input_shape: list[int]) -> dict:
  """One server with `setting`, loaded by each client count in turn; its /healthz counts per count."""
  server = Server(model, SETTINGS[setting])
  try:
    out = {}
    for clients in args.clients:
      before, cpu_before = server.health(), cpu_seconds(server.proc.pid)
      out[str(clients)] = run_clients(load(server.url, clients, args.seconds, args.warmup, input_shape))
      after, cpu_after = server.health(), cpu_seconds(server.proc.pid)
      if cpu_before is not None:  # the server's CPU per request answered (warm-up included): less load-bound
        out[str(clients)]["server_cpu_us_per_request"] = (
          1e6 * (cpu_after - cpu_before) / max(after["requests"] - before["requests"], 1)
        )
      calls = after["model_calls"] - before["model_calls"]
      out[str(clients)]["examples_per_model_call"] = (after["examples"] - before["examples"]) / max(calls, 1)
      if after["compilations_after_warmup"]:
        raise SystemExit(f"batching {setting}: {after['compilations_after_warmup']} compilations after the warm-up")
      common.log(
        f"  batching {setting:3s} {clients:3d} clients: {out[str(clients)]['requests_per_second']:7.0f} req/s, "
        f"p50 {out[str(clients)]['p50_ms']:.2f} ms, p99 {out[str(clients)]['p99_ms']:.2f} ms, "
        f"{out[str(clients)]['examples_per_model_call']:.1f} examples per call"
      )
    out["healthz"] = server.health()
    return out
  finally:
    code = server.stop()
    if code != 0:
      common.log(f"  jaxflow serve exited {code} on SIGTERM: {server.proc.stderr.read()[-500:]}")


def summarize(rounds: list[dict], args) -> dict:
  """Medians over rounds per (setting, clients), the 64-client ratios, and the Markdown table."""
  table = {}
  for setting in SETTINGS:
    for clients in map(str, args.clients):
      runs = [r[setting][clients] for r in rounds]
      keys = ("requests_per_second", "p50_ms", "p99_ms", "examples_per_model_call", "server_cpu_us_per_request")
      table[f"{setting}/{clients}"] = {
        key: statistics.median(run[key] for run in runs) for key in keys if all(key in run for run in runs)
      } | {"requests_per_second_each": [round(run["requests_per_second"]) for run in runs]}
  lines = [
    "| clients | batching | requests/s (each round) | p50 ms | p99 ms | examples per model call "
    "| server CPU us/request |",
    "|---:|---|---:|---:|---:|---:|---:|",
  ]
  for clients in map(str, args.clients):
    for setting in SETTINGS:
      row = table[f"{setting}/{clients}"]
      each = "/".join(map(str, row["requests_per_second_each"]))
      lines.append(
        f"| {clients} | {setting} | {row['requests_per_second']:,.0f} ({each}) | {row['p50_ms']:.2f} "
        f"| {row['p99_ms']:.2f} | {row['examples_per_model_call']:.1f} "
        f"| {row.get('server_cpu_us_per_request', 0):.0f} |"
      )
  ratios = {}
  most = str(max(args.clients))
  if f"on/{most}" in table:
    on, off = table[f"on/{most}"], table[f"off/{most}"]
    ratios = {
      "clients": int(most),
      "requests_per_second": on["requests_per_second"] / off["requests_per_second"],
      "p99": on["p99_ms"] / off["p99_ms"],
    }
    met = ratios["requests_per_second"] >= 4 and ratios["p99"] <= 2
    lines += [
      "",
      f"{most} clients, batching on / off: requests/s **{ratios['requests_per_second']:.2f}x** (target >= 4), "
      f"p99 **{ratios['p99']:.2f}x** (target <= 2): {'met' if met else 'NOT met'}.",
    ]
  return {"table": table, "ratios": ratios, "markdown": "\n".join(lines)}


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", default=None, help="an exported model (default: train and export the digits CNN)")
  parser.add_argument("--clients", default="1,8,64")
  parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per (setting, clients)")
  parser.add_argument("--warmup", type=float, default=1.0, help="seconds of load before measuring")
  parser.add_argument("--rounds", type=int, default=2, help="rounds, the settings' order alternating")
  parser.add_argument("--quick", action="store_true", help="1 round of 1.5 s per setting, a 2-epoch model")
  parser.add_argument("--out", default=DEFAULT_OUT)
  args = parser.parse_args(argv)
  if args.quick:
    args.seconds, args.warmup, args.rounds = 1.5, 0.5, 1
  args.clients = [int(c) for c in args.clients.split(",")]
  scratch = tempfile.mkdtemp(prefix="jaxflow-serve-bench-")
  model = args.model or make_model(scratch, args.quick)
  with open(os.path.join(model, "model_card.json")) as f:
    card = json.load(f)
  rounds = []
  started = time.perf_counter()
  for r in range(args.rounds):
    order = list(SETTINGS) if r % 2 == 0 else list(SETTINGS)[::-1]
    load_start = os.getloadavg()[0]
    common.log(f"round {r + 1} ({' then '.join(order)}), load {load_start:.1f}")
    rounds.append({setting: run_setting(model, setting, args, card["input"]["shape"]) for setting in order})
    rounds[-1] |= {"order": order, "loadavg_start": load_start}
  result = summarize(rounds, args)
  print(result["markdown"])
  payload = common.header("serve", args, versions=("jax", "jaxlib", "aiohttp", "numpy")) | {
    "model": {"dir": args.model or "(trained and exported by this script)", "problem": card["problem"]},
    "seconds": time.perf_counter() - started,
    "rounds": rounds,
    **result,
  }
  common.write_payload(args.out, payload)
  common.log(f"wrote {args.out}")


if __name__ == "__main__":
  main()
