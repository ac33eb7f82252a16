"""`jaxflow serve`: an exported model behind HTTP, concurrent requests batched onto precompiled sizes.

  POST /predict  {"inputs": [[...]]} (nested lists [n, *input shape]; one example [*shape] is taken too) or
                 {"images": ["<base64 PNG/JPEG>", ...]} -> {"predictions": [{"class", "probability",
                 "probabilities"} | {"value"}, ...]} (+ "std" for a seeds ensemble), one per example
  GET  /healthz  status, the batch sizes, request/batch counts and the compilations since the warm-up (0)
  GET  /model    the model card

Why aiohttp (the optional `serve` extra): one asyncio loop accepts and parses requests while the model runs in
a thread, and its runner shuts down gracefully on SIGTERM (stop listening, let the requests in flight finish,
then exit 0). Its low-level server with one handler routing three paths, not an Application: with many clients
the event loop's CPU per request is the server's bound (`handler`). Every batch size is compiled before the
port accepts anything (`batching`), so no request waits for a compile. A request the server cannot take gets a
4xx JSON `{"error": one line naming what is wrong}` and the server goes on. Imports stay within jax, numpy,
aiohttp and the standard library (Pillow only for image requests): a served model needs no training stack.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import io
import json
import signal
import socket
import sys
import time
from collections.abc import Callable

import numpy as np

from jaxflow.deploy import batching
from jaxflow.deploy.artifact import ArtifactError, Model, load_model

try:  # the optional `serve` extra: serve() says how to install it when it is missing
  from aiohttp import web
except ImportError:  # pragma: no cover - exercised only without the extra
  web = None

# The `serve` extra's faster JSON codec and event loop: with many clients the server's time per request is
# mostly HTTP and JSON in Python (~240-340 us of CPU per request here); orjson and uvloop took ~15% off it.
# Without them: the standard library's json and asyncio loop, the same documents.
try:
  import orjson
except ImportError:  # pragma: no cover - exercised only without the extra
  orjson = None
try:
  import uvloop
except ImportError:  # pragma: no cover - exercised only without the extra (or on Windows)
  uvloop = None


def _loads(body: bytes):
  """orjson for speed; a body it refuses (NaN, Infinity, an integer past a double) is read again by the standard
  library, which reads integers as orjson does, so what a request holds and the error it gets never depend on
  the codec."""
  if orjson is not None:
    try:
      return orjson.loads(body)
    except orjson.JSONDecodeError:
      pass
  return json.loads(body, parse_int=_json_int)


def _json_int(text: str):
  """An integer literal as orjson reads it: an int within 64 bits (int64 or uint64), else the nearest float
  (json alone gives a Python int, which numpy holds as an object: another error than orjson's float)."""
  value = int(text)
  return value if -(2**63) <= value < 2**64 else float(text)


def _json_body(value, status: int = 200):
  """A JSON response from bytes (json_response encodes a str again, per request)."""
  body = orjson.dumps(value) if orjson is not None else json.dumps(value).encode()
  return web.Response(body=body, status=status, content_type="application/json", charset="utf-8")


def _event_loop() -> asyncio.AbstractEventLoop | None:
  """uvloop's loop when installed (None: aiohttp's default asyncio loop)."""
  return None if uvloop is None else uvloop.new_event_loop()


MAX_BODY_MB = 16
# How long an idle keep-alive connection stays open: aiohttp's run_app default, which this server had as an
# Application; its low-level server alone keeps one an hour, each holding a file descriptor.
KEEPALIVE_SECONDS = 75.0


# What JSON numbers and booleans parse to: bool, int, uint (past int64), float. dtype.kind, not
# np.issubdtype: ~5 us a call, and a request made several (a tenth of the server's time per request).
JSON_NUMBER_KINDS = "biuf"


class RequestError(ValueError):
  """A request the server cannot take: the message (one line) goes back as a 400's "error"."""


def _one_line(text: str, limit: int = 300) -> str:
  return " ".join(str(text).split())[:limit]


def _expected(spec: dict) -> str:
  shape = ", ".join(map(str, spec["shape"]))
  return f"[n, {shape}] {spec['dtype']}" + (
    f" (values {spec['range'][0]}..{spec['range'][1]})" if spec.get("range") else ""
  )


def _as_array(value, spec: dict, source: str, *, one_example: bool) -> np.ndarray:
  """JSON lists -> an array with a batch dimension, its values checked against the spec's dtype."""
  try:
    array = np.asarray(value)
  except ValueError:
    raise RequestError(f"{source}: ragged nested lists; every example must have shape {spec['shape']}") from None
  if array.dtype == object:
    raise RequestError(f"{source}: holds null, objects or ragged lists; the model takes {_expected(spec)}")
  if one_example and array.ndim == len(spec["shape"]) and list(array.shape) == list(spec["shape"]):
    array = array[None]  # one example without its batch dimension
  if array.ndim >= 1 and len(array) == 0:
    raise RequestError(f"{source}: no examples; the model takes {_expected(spec)}")
  if array.ndim != len(spec["shape"]) + 1 or list(array.shape[1:]) != list(spec["shape"]):
    raise RequestError(f"{source}: shape {list(array.shape)}; the model takes {_expected(spec)}")
  if array.dtype.kind not in JSON_NUMBER_KINDS:  # strings
    raise RequestError(f"{source}: dtype {array.dtype.name}, not numbers; the model takes {_expected(spec)}")
  return _integral(array, spec, source)


@functools.cache
def _int_info(dtype: np.dtype) -> np.iinfo:
  return np.iinfo(dtype)  # ~1 us a call uncached, on every request


def _integral(array: np.ndarray, spec: dict, source: str) -> np.ndarray:
  """Numbers for an integer input (pixels, lengths) as that dtype, or RequestError naming the first value
  that is not a whole number or is out of the dtype's range. Float inputs are left to `check_inputs`."""
  dtype = np.dtype(spec["dtype"])
  if dtype.kind not in "iu" or not array.size:
    return array
  info = _int_info(dtype)
  if array.dtype.kind in "iub":  # JSON integers, compared as integers (a float64 rounds 2**63 - 1 up)
    if array.min() >= info.min and array.max() <= info.max:  # the common case (3.2 us; cast + compare 4.5)
      return array.astype(dtype)
    outside = (array < info.min) | (array > info.max)
  else:
    as_float = array.astype(np.float64)
    whole = np.isfinite(as_float) & (np.floor(as_float) == as_float)
    if not whole.all():
      index = tuple(int(i) for i in np.argwhere(~whole)[0])
      raise RequestError(
        f"{source}{list(index)} = {array[index].item()!r} is not a whole number; the model takes {_expected(spec)}"
      )
    outside = (as_float < info.min) | (as_float > info.max)
  if outside.any():
    index = tuple(int(i) for i in np.argwhere(outside)[0])
    raise RequestError(
      f"{source}{list(index)} = {array[index].item()!r} is outside {dtype.name}'s {info.min}..{info.max}; "
      f"the model takes {_expected(spec)}"
    )
  return array.astype(dtype)


def _decode_images(value, spec: dict) -> np.ndarray:
  """Base64 PNG/JPEG strings -> uint8 [n, H, W, C]: converted to the card's channel count, resized to H x W."""
  from PIL import Image  # only image requests need Pillow; arrays are served with jax and numpy alone

  shape = spec.get("shape") or []
  modes = {1: "L", 3: "RGB", 4: "RGBA"}
  if spec.get("dtype") != "uint8" or len(shape) != 3 or shape[2] not in modes:
    raise RequestError(f'"images": this model takes {spec.get("shape", spec.get("fields"))} arrays; send "inputs"')
  if isinstance(value, str):
    value = [value]
  if not isinstance(value, list) or not value:
    raise RequestError('"images" must be a non-empty list of base64-encoded PNG or JPEG strings')
  height, width, channels = shape
  out = []
  for i, text in enumerate(value):
    if not isinstance(text, str):
      raise RequestError(f"images[{i}]: expected a base64 string, got {type(text).__name__}")
    if text.startswith("data:"):  # a data URL: data:image/png;base64,....
      text = text.partition(",")[2]
    try:
      raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
      raise RequestError(f"images[{i}]: not valid base64 ({_one_line(e, 120)})") from None
    try:
      image = Image.open(io.BytesIO(raw))
      image.load()
    except Exception as e:  # Pillow raises OSError, SyntaxError, ValueError, DecompressionBombError...
      raise RequestError(
        f"images[{i}]: not an image Pillow can decode ({type(e).__name__}); send PNG or JPEG"
      ) from None
    image = image.convert(modes[channels])
    if image.size != (width, height):
      image = image.resize((width, height), Image.Resampling.BILINEAR)
    out.append(np.asarray(image, np.uint8).reshape(height, width, channels))
  return np.stack(out)


def parse_request(body: bytes, model: Model):
  """A POST /predict body -> the model's inputs (checked), or RequestError naming what is wrong."""
  try:
    payload = _loads(body)
  except (UnicodeDecodeError, ValueError) as e:
    raise RequestError(f"the body is not valid JSON ({_one_line(e, 120)})") from None
  example = '{"inputs": [[...]]} or {"images": ["<base64 PNG>"]}'
  if not isinstance(payload, dict):
    raise RequestError(f"the body must be a JSON object: {example}")
  keys = [k for k in ("inputs", "images") if k in payload]
  unknown = sorted(set(payload) - {"inputs", "images"})
  if unknown or len(keys) != 1:
    found = f"; unknown keys {unknown}" if unknown else ""
    raise RequestError(f'the body needs exactly one of "inputs" or "images"{found}: {example}')
  spec = model.card["input"]
  if keys[0] == "images":
    inputs = _decode_images(payload["images"], spec)
  elif spec.get("fields"):
    value = payload["inputs"]
    if not isinstance(value, dict) or set(value) != set(spec["fields"]):
      raise RequestError(f'"inputs": expected an object with keys {sorted(spec["fields"])}')
    inputs = {k: _as_array(v, spec["fields"][k], f"inputs[{k!r}]", one_example=False) for k, v in sorted(value.items())}
  else:
    inputs = _as_array(payload["inputs"], spec, "inputs", one_example=True)
  try:
    return model.check_inputs(inputs, "inputs")
  except ArtifactError as e:
    raise RequestError(_one_line(e)) from None


def predictions(outputs: dict[str, np.ndarray], card: dict) -> list[dict]:
  """The model's outputs -> one JSON object per example: the class, its probability and every class's for
  a classifier; the value for a regression; the across-seed std beside either for an ensemble."""
  spec = card["output"]
  values = outputs[spec["name"]]
  std = outputs.get(spec.get("std_name") or "")
  names = spec.get("class_names")
  if card["problem"]["kind"] != "regression" and not names:
    names = [str(i) for i in range(values.shape[-1])]
  out = []
  best_classes = values.reshape(len(values), -1).argmax(axis=1).tolist()  # one call, not one a row
  for i, row in enumerate(values.tolist()):
    if card["problem"]["kind"] == "regression":
      entry = {"value": row[0] if len(row) == 1 else row}
      if std is not None:
        entry["std"] = std[i].tolist()[0] if len(row) == 1 else std[i].tolist()
    else:
      best = best_classes[i]
      entry = {"class": names[best], "probability": row[best], "probabilities": dict(zip(names, row))}
      if std is not None:
        entry["std"] = dict(zip(names, std[i].tolist()))
    out.append(entry)
  return out


def _error(status: int, message: str):
  return _json_body({"error": _one_line(message)}, status)


class Service:
  """The routes, over one model, its batcher and the compile counter."""

  def __init__(self, model: Model, batcher: batching.Batcher, counter: batching.CompileCounter, warmup: dict):
    self.model, self.batcher, self.counter, self.warmup = model, batcher, counter, warmup
    self.errors = 0
    self.stopping = False
    self.max_body_bytes = MAX_BODY_MB * 2**20

  async def predict(self, request):
    try:
      body = await request.read()
    except web.HTTPRequestEntityTooLarge:
      self.errors += 1
      return _error(413, f"the body is over {self.max_body_bytes} bytes; send fewer examples per request")
    try:
      inputs = parse_request(body, self.model)
    except RequestError as e:
      self.errors += 1
      return _error(400, str(e))
    return _json_body({"predictions": await self.batcher.submit(inputs)})  # the batcher's answer: predictions

  async def healthz(self, request):
    return web.json_response(
      {
        "status": "stopping" if self.stopping else "ok",
        "compilations_after_warmup": self.counter.since_mark(),
        "compilations_during_warmup": self.warmup["compilations"],
        "warmup_seconds": round(self.warmup["seconds"], 3),
        "batch_sizes": list(self.batcher.sizes),
        "batch_window_ms": self.batcher.window_s * 1000,
        **self.batcher.stats,
        "in_flight": self.batcher.in_flight,
        "errors": self.errors,
      }
    )

  async def card(self, request):
    return web.json_response(self.model.card)


ROUTES = "POST /predict, GET /healthz, GET /model"


def _route_error(request) -> tuple[int, str] | None:
  """(404 or 405, its message) when no route takes the request; None when one does."""
  if request.path not in {"/predict", "/healthz", "/model"}:
    return 404, f"no route {request.path}; routes: {ROUTES}"
  allowed = "POST" if request.path == "/predict" else "GET"
  if request.method != allowed and not (allowed == "GET" and request.method == "HEAD"):
    return 405, f"{request.method} {request.path} is not allowed; routes: {ROUTES}"
  return None


async def _expect(request) -> tuple[int, str] | None:
  """`Expect: 100-continue` (curl sends it before a large body, then waits for this answer): "100 Continue",
  as aiohttp's router would; any other expectation: (417, its message)."""
  expect = request.headers["Expect"]
  if request.version != (1, 1):
    return None
  if expect.lower() != "100-continue":
    return 417, f"Expect: {expect} is not supported (only 100-continue)"
  await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
  request.writer.output_size = 0  # the response proper has not started
  return None


def handler(service: Service):
  """The server's one handler: the three routes by path, everything else a JSON 4xx, any unexpected failure
  a JSON 500 (a bug, not the client's) while the server goes on. aiohttp's low-level server, not an
  Application: its router, middleware chain and per-request app bookkeeping cost ~15% of the event loop's CPU
  per request (~20 us measured on a bare handler), which with many clients is the server's bound."""
  routes = {"/predict": service.predict, "/healthz": service.healthz, "/model": service.card}

  async def handle(request):
    refused = _route_error(request)
    if refused is None and "Expect" in request.headers:
      refused = await _expect(request)
    if refused is not None:
      return _error(*refused)
    try:
      return await routes[request.path](request)
    except Exception as e:
      print(f"jaxflow serve: {request.method} {request.path} failed: {type(e).__name__}: {e}", file=sys.stderr)
      return _error(500, f"internal error: {type(e).__name__}: {e}")

  return handle


async def serve_until_stopped(service: Service, sock: socket.socket, *, max_body_mb: float, on_ready: Callable):
  """Serves on `sock` until SIGTERM or SIGINT; then stops listening, lets the requests in flight finish
  (their batches included: the batcher's worker outlives them), and returns."""
  loop = asyncio.get_running_loop()
  max_bytes = int(max_body_mb * 2**20)
  service.max_body_bytes = max_bytes

  def request_factory(message, payload, protocol, writer, task):
    return web.BaseRequest(message, payload, protocol, writer, task, loop, client_max_size=max_bytes)

  server = web.Server(
    handler(service), request_factory=request_factory, access_log=None, keepalive_timeout=KEEPALIVE_SECONDS
  )
  runner = web.ServerRunner(server)
  await runner.setup()
  worker = loop.create_task(service.batcher.run())
  stop = asyncio.Event()
  for signum in (signal.SIGTERM, signal.SIGINT):
    loop.add_signal_handler(signum, stop.set)
  try:
    await web.SockSite(runner, sock).start()
    on_ready()
    await stop.wait()
    service.stopping = True
  finally:
    await runner.cleanup()  # stop listening, then wait for the handlers in flight
    worker.cancel()
    service.batcher.close()


def _listen(host: str, port: int) -> socket.socket:
  """A listening socket (port 0: a free one), so the URL printed is the real one and the port is taken
  before the line says so; ArtifactError (one line, exit 2) when it cannot be had."""
  try:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=1024)
  except OSError as e:
    raise ArtifactError(f"--host={host} --port={port}: cannot listen ({e.strerror or e})") from None


def serve(
  model_dir: str,
  *,
  host: str = "127.0.0.1",
  port: int = 8080,
  batch_sizes: str = "1,8,32,128",
  batch_window_ms: float = 2.0,
  ready: Callable[[str], None] | None = None,
  max_body_mb: float = MAX_BODY_MB,
) -> None:
  """Serves the model in `model_dir` until SIGTERM or SIGINT (then finishes the requests in flight and
  returns). `ready(url)` is called once the port accepts requests. Bad flags, a model that cannot be
  loaded, or a port that cannot be had: ArtifactError, before anything listens."""
  if web is None:
    raise ArtifactError("jaxflow serve needs aiohttp: pip install 'jaxflow[serve]'")
  sizes = batching.parse_batch_sizes(batch_sizes)
  if not batch_window_ms >= 0:
    raise ArtifactError(f"--batch_window_ms={batch_window_ms}: must be 0 (no batching) or more")
  model = load_model(model_dir)
  counter = batching.CompileCounter()
  seconds = batching.warm_up(model, sizes)
  warmup = {"compilations": counter.total, "seconds": seconds}
  counter.mark()
  sock = _listen(host, port)
  bound_host, bound_port = sock.getsockname()[:2]
  url = f"http://{'[' + bound_host + ']' if ':' in bound_host else bound_host}:{bound_port}"
  batcher = batching.Batcher(model, sizes, batch_window_ms / 1000, answer=lambda out: predictions(out, model.card))
  service = Service(model, batcher, counter, warmup)

  def announce():
    problem = model.card["problem"]
    print(
      f"jaxflow serve: {problem['model']} on {problem['dataset']} at {url} (POST /predict, GET /healthz, "
      f"GET /model); batch sizes {','.join(map(str, sizes))}, window {batch_window_ms:g} ms; "
      f"{warmup['compilations']} programs compiled in {seconds:.1f} s",
      flush=True,
    )
    if ready is not None:
      ready(url)

  started = time.perf_counter()
  loop = _event_loop() or asyncio.new_event_loop()
  try:
    loop.run_until_complete(serve_until_stopped(service, sock, max_body_mb=max_body_mb, on_ready=announce))
  finally:
    loop.close()
  stats = batcher.stats
  print(
    f"jaxflow serve: stopped after {time.perf_counter() - started:.0f} s: {stats['requests']} requests, "
    f"{stats['examples']} examples in {stats['batches']} batches; "
    f"{counter.since_mark()} compilations after the warm-up",
    file=sys.stderr,
    flush=True,
  )
  counter.close()
