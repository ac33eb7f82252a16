"""`jaxflow serve` for real: the CLI's server in a subprocess, driven over HTTP by urllib.

Two server processes for the module (each costs a jax import, a model load and a warm-up): `server` (the CNN,
a 20 ms window so that concurrent requests batch on a loaded machine) for predictions, images, concurrency,
errors and the card; a second one in the SIGTERM test (batches of 4, a 2.5 s window) holds requests long
enough to send SIGTERM while they are in flight. Predictions must equal `load_model(DIR)(x)` for the same x;
/healthz's compile count comes from JAX's own compile event. The batcher's logic and the response format are
also tested in this process (no server), with a stand-in model, for the cases the digits models do not have
(regression, ensembles, dict inputs).
"""

from __future__ import annotations

import ast
import asyncio
import base64
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from jaxflow.deploy import artifact, batching, load_model, serve
from tests.conftest import ROOT


class Server:
  """`jaxflow serve --model=DIR --port=0 FLAGS` as a subprocess; `url` from the line it prints on start."""

  def __init__(self, model_dir: str, *flags: str):
    self.model_dir = model_dir
    cmd = [sys.executable, "-m", "jaxflow.cli", "serve", f"--model={model_dir}", "--port=0", *flags]
    self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.append(self.proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout=180)
    if not lines or "http://" not in lines[0]:
      self.proc.kill()
      raise AssertionError(f"the server did not start: {lines} {self.proc.stderr.read()[-2000:]}")
    self.banner = lines[0]
    self.url = lines[0].split(" at ")[1].split()[0]

  def stop(self) -> int:
    if self.proc.poll() is None:
      self.proc.send_signal(signal.SIGTERM)
    try:
      return self.proc.wait(timeout=60)
    finally:
      if self.proc.poll() is None:
        self.proc.kill()


def request(url: str, body: bytes | dict | None = None, method: str | None = None) -> tuple[int, dict]:
  """(status, JSON body) of one HTTP request; a dict body is sent as JSON."""
  data = json.dumps(body).encode() if isinstance(body, dict) else body
  req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
  try:
    with urllib.request.urlopen(req, timeout=60) as response:
      return response.status, json.loads(response.read())
  except urllib.error.HTTPError as e:
    return e.code, json.loads(e.read())


def digits(n: int, seed: int = 0) -> np.ndarray:
  return np.random.default_rng(seed).integers(0, 256, size=(n, 8, 8, 1), dtype=np.uint8)


def probabilities(response: dict) -> np.ndarray:
  return np.array([[p["probabilities"][str(k)] for k in range(10)] for p in response["predictions"]])


@pytest.fixture(scope="module")
def server(cnn_model):
  s = Server(cnn_model, "--batch_window_ms=20")
  yield s
  assert s.stop() == 0


@pytest.fixture(scope="module")
def reference(cnn_model):
  model = load_model(cnn_model)
  return lambda x: model(x)["probabilities"]


@pytest.mark.slow
def test_predictions_equal_load_model(server, reference):
  x = digits(5)
  status, body = request(server.url + "/predict", {"inputs": x.tolist()})
  assert status == 200, body
  expected = reference(x)
  np.testing.assert_allclose(probabilities(body), expected, atol=1e-6)
  assert [p["class"] for p in body["predictions"]] == [str(k) for k in expected.argmax(1)]
  assert [p["probability"] for p in body["predictions"]] == pytest.approx(expected.max(1), abs=1e-6)
  status, one = request(server.url + "/predict", {"inputs": x[0].tolist()})  # one example, no batch dimension
  assert status == 200 and len(one["predictions"]) == 1
  np.testing.assert_allclose(probabilities(one)[0], expected[0], atol=1e-6)


def png(image: np.ndarray) -> str:
  buffer = io.BytesIO()
  Image.fromarray(image[..., 0], mode="L").save(buffer, format="PNG")
  return base64.b64encode(buffer.getvalue()).decode()


@pytest.mark.slow
def test_base64_png_images(server, reference):
  x = digits(3, seed=1)
  images = [png(x[0]), "data:image/png;base64," + png(x[1]), png(x[2])]
  status, body = request(server.url + "/predict", {"images": images})
  assert status == 200, body
  np.testing.assert_allclose(probabilities(body), reference(x), atol=1e-6)
  rgb = io.BytesIO()  # a colour image of another size: converted to grayscale, resized to 8x8
  Image.new("RGB", (32, 24), (200, 100, 50)).save(rgb, format="PNG")
  status, body = request(server.url + "/predict", {"images": [base64.b64encode(rgb.getvalue()).decode()]})
  assert status == 200 and len(body["predictions"]) == 1, body


@pytest.mark.slow
def test_concurrent_requests_are_batched_with_no_compilation(server, reference):
  before = request(server.url + "/healthz")[1]
  clients, per_client = 32, 3
  x = digits(clients * per_client, seed=2)
  big = digits(300, seed=3)  # more than the largest batch size (128): split across calls
  results, barrier = {}, threading.Barrier(clients)

  def client(i: int) -> None:
    barrier.wait()
    for j in range(per_client):
      k = i * per_client + j
      results[k] = request(server.url + "/predict", {"inputs": x[k : k + 1].tolist()})
    if i == 0:
      results["big"] = request(server.url + "/predict", {"inputs": big.tolist()})

  threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
  for t in threads:
    t.start()
  for t in threads:
    t.join(timeout=120)
  assert all(status == 200 for status, _ in results.values()), [b for s, b in results.values() if s != 200][:3]
  got = np.concatenate([probabilities(results[k][1]) for k in range(clients * per_client)])
  np.testing.assert_allclose(got, reference(x), atol=1e-6)
  np.testing.assert_allclose(probabilities(results["big"][1]), reference(big), atol=1e-6)
  after = request(server.url + "/healthz")[1]
  requests = after["requests"] - before["requests"]
  assert requests == clients * per_client + 1
  assert after["batches"] - before["batches"] < requests  # requests shared model calls
  assert after["compilations_after_warmup"] == 0
  assert after["compilations_during_warmup"] >= len(after["batch_sizes"])  # the counter sees real compiles
  assert after["status"] == "ok" and after["in_flight"] == 0


def bad_base64_image() -> dict:
  return {"images": ["not base64 at all!"]}


MALFORMED = {
  "invalid JSON": (b"{inputs: [1, 2", "not valid JSON"),
  "not an object": (b"[1, 2, 3]", "JSON object"),
  "no inputs key": (b'{"pixels": [1]}', '"inputs" or "images"'),
  "wrong shape": ({"inputs": [[1, 2, 3]]}, "shape [1, 3]"),
  "value over uint8": ({"inputs": np.full((1, 8, 8, 1), 300).tolist()}, "300 is outside uint8"),
  # Past 64 bits: a float for orjson, and for the standard library's path too (test_the_json_codec_decides_nothing).
  "a 20-digit value": ({"inputs": np.full((1, 8, 8, 1), 10**20, dtype=object).tolist()}, "is outside uint8"),
  "NaN": ({"inputs": np.full((1, 8, 8, 1), np.nan).tolist()}, "nan is not a whole number"),
  "fractional value": ({"inputs": np.full((1, 8, 8, 1), 1.5).tolist()}, "1.5 is not a whole number"),
  "strings": ({"inputs": np.full((1, 8, 8, 1), "a").tolist()}, "not numbers"),
  "ragged lists": ({"inputs": [[[[0]] * 8] * 8, [[[0]] * 8] * 7]}, "ragged"),
  "no examples": ({"inputs": []}, "no examples"),
  "bad base64": (bad_base64_image(), "images[0]: not valid base64"),
  "not an image": ({"images": [base64.b64encode(b"hello").decode()]}, "images[0]: not an image"),
  "image not a string": ({"images": [7]}, "images[0]: expected a base64 string"),
}


@pytest.mark.parametrize(
  "body",
  [
    b"[100000000000000000000]",
    b"[18446744073709551615]",
    b"[-9223372036854775809]",
    b"[1, 2.5, true]",
    b"[NaN, Infinity]",
    b"[1" + b"0" * 400 + b"]",
  ],
)
def test_the_json_codec_decides_nothing(body, monkeypatch):
  """orjson and the standard library's fallback read a body alike: integers past 64 bits as floats, NaN too."""
  fast = serve._loads(body)
  monkeypatch.setattr(serve, "orjson", None)
  assert repr(serve._loads(body)) == repr(fast)


@pytest.mark.parametrize(
  "dtype, values, error",
  [
    ("int64", np.array([2**63], np.uint64), "9223372036854775808 is outside int64's"),  # a float64 rounds max up
    ("int64", np.array([2**63 - 1], np.uint64), None),
    ("uint8", np.array([0, 255]), None),
    ("uint8", np.array([0, 256]), "inputs[1] = 256 is outside uint8's 0..255"),
    ("uint8", np.array([3.0, 4.0]), None),  # whole floats are taken, as the dtype
    ("uint8", np.array([True]), None),
  ],
)
def test_integer_inputs_are_checked_exactly_and_cast(dtype, values, error):
  spec = {"dtype": dtype, "shape": [values.size]}
  if error is not None:
    with pytest.raises(serve.RequestError, match=re.escape(error)):
      serve._integral(values, spec, "inputs")
    return
  got = serve._integral(values, spec, "inputs")
  assert got.dtype == np.dtype(dtype) and got.tolist() == [int(v) for v in values.tolist()]


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_request_is_a_400_naming_the_problem(server, case):
  body, expected = MALFORMED[case]
  status, answer = request(server.url + "/predict", body)
  assert status == 400, answer
  assert expected in answer["error"] and "\n" not in answer["error"], answer
  status, answer = request(server.url + "/predict", {"inputs": digits(1).tolist()})  # still serving
  assert status == 200 and len(answer["predictions"]) == 1


@pytest.mark.slow
def test_routes_and_limits_answer_json(server, cnn_model):
  status, body = request(server.url + "/nothing")
  assert status == 404 and "no route /nothing" in body["error"]
  status, body = request(server.url + "/predict", method="GET")
  assert status == 405 and "GET /predict is not allowed" in body["error"]
  status, body = request(server.url + "/predict", b'{"inputs": [' + b"0," * (9 * 2**20) + b"0]}")
  assert status == 413 and "over" in body["error"]
  status, card = request(server.url + "/model")
  with open(os.path.join(cnn_model, "model_card.json")) as f:
    assert status == 200 and card == json.load(f)
  assert request(server.url + "/healthz")[1]["status"] == "ok"


@pytest.mark.slow
def test_expect_100_continue_is_answered_before_the_body(server, reference):
  """A client that sends `Expect: 100-continue` (curl does, before a large body) sends the body only after the
  server's "100 Continue"; unanswered, it would wait (curl: 1 s) on every request."""
  host, port = server.url.split("//")[1].rsplit(":", 1)
  x = digits(2, seed=7)
  body = json.dumps({"inputs": x.tolist()}).encode()
  head = (
    f"POST /predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
    f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n"
  )
  with socket.create_connection((host, int(port)), timeout=10) as sock:
    sock.sendall(head.encode())
    assert sock.recv(64).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")  # before any byte of the body
    sock.sendall(body)
    answer = b""
    while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < _content_length(answer):
      chunk = sock.recv(65536)
      assert chunk, f"the server closed the connection after {answer[:200]!r}"  # else this loop never ends
      answer += chunk
  assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
  np.testing.assert_allclose(probabilities(json.loads(answer.split(b"\r\n\r\n", 1)[1])), reference(x), atol=1e-6)
  status, refused = request_with_headers(server.url + "/predict", body, {"Expect": "something-else"})
  assert status == 417 and "only 100-continue" in refused["error"], refused


def _content_length(response: bytes) -> int:
  head = response.split(b"\r\n\r\n", 1)[0].decode()
  return next(int(line.split(":", 1)[1]) for line in head.split("\r\n") if line.lower().startswith("content-length:"))


def request_with_headers(url: str, body: bytes, headers: dict) -> tuple[int, dict]:
  req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **headers})
  try:
    with urllib.request.urlopen(req, timeout=60) as response:
      return response.status, json.loads(response.read())
  except urllib.error.HTTPError as e:
    return e.code, json.loads(e.read())


@pytest.mark.slow
def test_sigterm_finishes_requests_in_flight(cnn_model, reference):
  held = Server(cnn_model, "--batch_sizes=1,4", "--batch_window_ms=2500")
  try:
    x, results = digits(3, seed=4), {}
    threads = [
      threading.Thread(
        target=lambda i=i: results.update({i: request(held.url + "/predict", {"inputs": x[i].tolist()})})
      )
      for i in range(3)
    ]
    for t in threads:
      t.start()
    deadline = time.monotonic() + 30
    while request(held.url + "/healthz")[1]["in_flight"] < 3:  # all three wait in the batcher's window
      assert time.monotonic() < deadline, "the requests never arrived"
      time.sleep(0.02)
    held.proc.send_signal(signal.SIGTERM)
    for t in threads:
      t.join(timeout=60)
    assert held.proc.wait(timeout=60) == 0
    assert [results[i][0] for i in range(3)] == [200, 200, 200]
    np.testing.assert_allclose(
      np.concatenate([probabilities(results[i][1]) for i in range(3)]), reference(x), atol=1e-6
    )
    assert "stopped" in held.proc.stderr.read()
  finally:
    held.stop()


@pytest.mark.slow
@pytest.mark.parametrize(
  "flags, expected",
  [(["--model=/nonexistent"], "/nonexistent: no such folder"), (["--batch_sizes=8,x"], "--batch_sizes='8,x'")],
)
def test_cli_errors_are_one_line_exit_2(cnn_model, flags, expected):
  cmd = [sys.executable, "-m", "jaxflow.cli", "serve", f"--model={cnn_model}", *flags, "--port=0"]
  done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert done.returncode == 2, done.stderr
  assert expected in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


# In this process, no server: the batcher and the response format.


def test_batch_sizes_and_chunks():
  assert batching.parse_batch_sizes("32, 1,8,8") == (1, 8, 32)
  for bad in ("", "0,8", "a", "-1"):
    with pytest.raises(serve.ArtifactError, match="--batch_sizes"):
      batching.parse_batch_sizes(bad)
  sizes = (1, 8, 32, 128)
  assert batching.chunks(1, sizes) == [(1, 1)]
  assert batching.chunks(9, sizes) == [(9, 32)]
  assert batching.chunks(300, sizes) == [(128, 128), (128, 128), (44, 128)]


class Doubler:
  """A stand-in model: dict or array inputs, output 2x the first feature; records the batch sizes run."""

  card = {"input": {"shape": [2], "dtype": "float32"}}

  def __init__(self):
    self.sizes = []

  def __call__(self, x):
    a = x["a"] if isinstance(x, dict) else x
    self.sizes.append(len(a))
    return {"value": 2 * a[:, :1]}


def run_requests(window_s: float, xs: list) -> tuple[list, dict, list]:
  async def main():
    model = Doubler()
    batcher = batching.Batcher(model, (1, 4, 16), window_s)
    worker = asyncio.get_running_loop().create_task(batcher.run())
    outputs = await asyncio.gather(*(batcher.submit(x) for x in xs))
    worker.cancel()
    batcher.close()
    return outputs, batcher.stats, model.sizes

  return asyncio.run(main())


def test_an_idle_keep_alive_connection_is_closed_after_keepalive_seconds(monkeypatch):
  """The server closes a keep-alive connection left idle for serve.KEEPALIVE_SECONDS (75 s, run_app's default,
  which the Application had): aiohttp's low-level server alone keeps it an hour, a file descriptor held per
  client that leaves its connection open. In this process, with a stand-in model; stopped by cancelling."""
  monkeypatch.setattr(serve, "KEEPALIVE_SECONDS", 0.3)
  model = Doubler()
  service = serve.Service(model, batching.Batcher(model, (1,), 0.0), counter=None, warmup={})
  handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}  # the server sets its own

  async def main():
    sock, ready = socket.create_server(("127.0.0.1", 0)), asyncio.Event()
    port = sock.getsockname()[1]
    server = asyncio.create_task(serve.serve_until_stopped(service, sock, max_body_mb=1, on_ready=ready.set))
    await asyncio.wait_for(ready.wait(), 30)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /model HTTP/1.1\r\nHost: x\r\n\r\n")  # HTTP/1.1: kept alive
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    card = await reader.readexactly(_content_length(head))
    try:
      return head, card, await asyncio.wait_for(reader.read(), 10)  # b"" once the server closed it
    finally:
      writer.close()
      server.cancel()
      await asyncio.gather(server, return_exceptions=True)

  try:
    head, card, after = asyncio.run(main())
  finally:
    for signum, handler in handlers.items():
      signal.signal(signum, handler)
  assert head.startswith(b"HTTP/1.1 200") and json.loads(card) == Doubler.card
  assert after == b""


def test_batcher_groups_requests_and_pads_to_precompiled_sizes():
  xs = [np.full((n, 2), i, np.float32) for i, n in enumerate([1, 2, 1, 20, 1])]
  for window in (0.05, 0.0):
    outputs, stats, sizes = run_requests(window, xs)
    for x, out in zip(xs, outputs):
      np.testing.assert_array_equal(out["value"], 2 * x[:, :1])
    assert set(sizes) <= {1, 4, 16} and stats["requests"] == 5 and stats["examples"] == 25
    assert stats["batches"] == (5 if window == 0 else 2)  # 1+2+1+20 fill the largest size; then the last
  dict_out, _, _ = run_requests(0.01, [{"a": np.ones((3, 2), np.float32)}])
  np.testing.assert_array_equal(dict_out[0]["value"], np.full((3, 1), 2.0))


def test_predictions_format_regression_and_ensembles():
  card = {"problem": {"kind": "multiclass"}, "output": {"name": "p", "class_names": ["a", "b"], "std_name": "std_p"}}
  out = serve.predictions({"p": np.array([[0.25, 0.75]]), "std_p": np.array([[0.1, 0.2]])}, card)
  assert out == [
    {"class": "b", "probability": 0.75, "probabilities": {"a": 0.25, "b": 0.75}, "std": {"a": 0.1, "b": 0.2}}
  ]
  card = {"problem": {"kind": "regression"}, "output": {"name": "value", "class_names": None}}
  assert serve.predictions({"value": np.array([[1.5], [2.5]])}, card) == [{"value": 1.5}, {"value": 2.5}]


class FloatModel:
  """A stand-in with a float input and no value range (a tabular model's card): `check_inputs` is Model's."""

  card = {"input": {"name": "x", "shape": [2], "dtype": "float32", "range": None}}
  check_inputs = artifact.Model.check_inputs


@pytest.mark.parametrize(
  "body, expected",
  [
    (b'{"inputs": [["a", "b"]]}', "not numbers"),
    (b'{"inputs": [[1, null]]}', "null"),
    (b'{"inputs": [1, 2, 3]}', "shape"),
  ],
)
def test_float_input_requests_are_checked(body, expected):
  with pytest.raises(serve.RequestError, match=expected):
    serve.parse_request(body, FloatModel())
  x = serve.parse_request(b'{"inputs": [[1, 2.5], [true, 0]]}', FloatModel())
  assert x.dtype == np.float32 and x.tolist() == [[1.0, 2.5], [1.0, 0.0]]


def test_served_model_needs_only_jax_numpy_and_aiohttp():
  allowed = {"jax", "numpy", "aiohttp", "PIL", "jaxflow", "orjson", "uvloop"}
  for name in ("serve.py", "batching.py"):
    tree = ast.parse(open(os.path.join(ROOT, "jaxflow", "deploy", name)).read())
    for node in ast.walk(tree):
      if isinstance(node, (ast.Import, ast.ImportFrom)):
        module = node.names[0].name if isinstance(node, ast.Import) else node.module
        top = module.split(".")[0]
        assert top in allowed or top in sys.stdlib_module_names, f"{name} imports {module}"
        assert not top == "jaxflow" or module.startswith("jaxflow.deploy"), f"{name} imports {module}"
        assert module not in ("jaxflow.deploy.export", "jaxflow.deploy.card", "jaxflow.deploy.inference")
