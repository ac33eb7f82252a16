"""Screenshots of TensorBoard itself: one TensorBoard server on the three runs' event files, photographed by a
headless Chromium at fixed URLs (dashboard, run filter, tag filter in the URL's fragment).

Why the legacy Scalars / Histograms / Images dashboards and not Time Series: Time Series draws its charts with
WebGL, which headless Chromium without a GPU leaves blank (checked: empty cards); the legacy dashboards draw
SVG/canvas and take their state from the fragment (`#scalars&regexInput=^healthy$&tagFilter=...`).
TensorBoard is a single-page app: Chromium's virtual time budget lets its requests and drawing finish before
the picture is taken, and every picture is checked for drawn content (not a blank page or a spinner) and
retaken once with a longer budget if it has none.

Nothing here is needed by --quick (CI has no Chromium): `available()` says whether screenshots can be taken.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator

import numpy as np
from matplotlib import image as mpimg

WINDOW = "1400,1000"
TALL_WINDOW = "1400,1450"  # the Images page: two confusion images a row, three runs
BUDGET_MS = 15000
# A drawn page: at least this share of the content area is coloured (the runs' lines, histograms, the confusion
# image's blues). Measured: a blank Time Series page 0.0017 (its grey text and settings), drawn pages 0.009-0.046.
CONTENT_SHARE = 0.004
LOSS_TAGS = "^(train|eval)/(loss|accuracy)$"
RUN_TAGS = "^(train|eval)/(loss|accuracy)$|grad_norm|train/lr"


def chromium() -> str | None:
  return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def available() -> bool:
  return chromium() is not None


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _get(url: str):
  with urllib.request.urlopen(url, timeout=5) as r:
    return json.loads(r.read())


@contextlib.contextmanager
def tensorboard(logdir: str, runs: list[str], timeout: float = 180.0) -> Iterator[str]:
  """A TensorBoard server on 127.0.0.1 at a free port, yielded once it lists every run's scalars; stopped after."""
  port = _free_port()
  log = open(os.path.join(os.path.dirname(logdir), "tensorboard.log"), "w")
  cmd = [sys.executable, "-m", "tensorboard.main", "--logdir", logdir, "--host", "127.0.0.1", "--port", str(port)]
  proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
  base = f"http://127.0.0.1:{port}"
  try:
    deadline = time.monotonic() + timeout
    while True:
      try:
        if set(runs) <= set(_get(base + "/data/plugin/scalars/tags")):
          break
      except OSError:
        pass
      if proc.poll() is not None or time.monotonic() > deadline:
        raise RuntimeError(f"TensorBoard did not serve {runs} (see {log.name})")
      time.sleep(1.0)
    yield base
  finally:
    proc.terminate()
    try:
      proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
      proc.kill()
    log.close()


def drawn_share(path: str) -> float:
  """The share of the page's content area (right of the sidebar, below the header) that is coloured
  (saturation above 0.25): text and grid lines are grey, the data TensorBoard draws is in the runs' colours."""
  img = mpimg.imread(path)[..., :3]
  h, w = img.shape[:2]
  content = img[int(0.12 * h) :, int(0.27 * w) :]
  return float(np.mean(content.max(axis=-1) - content.min(axis=-1) > 0.25))


def shoot(url: str, path: str, budget_ms: int = BUDGET_MS, window: str = WINDOW) -> float:
  """One screenshot of `url` into `path` (a fresh browser profile each time); returns its drawn share."""
  with tempfile.TemporaryDirectory(prefix="jaxflow_chromium_") as profile:
    cmd = [
      chromium(),
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--hide-scrollbars",
      f"--user-data-dir={profile}",
      f"--window-size={window}",
      f"--screenshot={path}",
      f"--virtual-time-budget={budget_ms}",
      url,
    ]
    subprocess.run(cmd, capture_output=True, timeout=180, check=False)
  return drawn_share(path) if os.path.exists(path) else 0.0


def fragment(dashboard: str, run: str | None = None, tags: str | None = None) -> str:
  """'#scalars&regexInput=^healthy$&tagFilter=...': the dashboard with its run and tag filters, no smoothing."""
  parts = [dashboard]
  if run:
    parts.append("regexInput=" + urllib.parse.quote(f"^{run}$", safe=""))
  if tags:
    parts.append("tagFilter=" + urllib.parse.quote(tags, safe=""))
  if dashboard == "scalars":
    parts.append("_smoothingWeight=0")
  return "#" + "&".join(parts)


def plan(runs: list[str]) -> list[tuple[str, str, str]]:
  """(file, title, fragment) of every screenshot: the three runs' losses together, then per run its scalars and
  kernel histograms, and the confusion images of all runs side by side."""
  shots = [
    (
      "tb_scalars_all.png",
      "TensorBoard Scalars: loss and accuracy of all three runs",
      fragment("scalars", None, LOSS_TAGS),
    )
  ]
  for run in runs:
    shots.append((f"tb_scalars_{run}.png", f"TensorBoard Scalars: the {run} run", fragment("scalars", run, RUN_TAGS)))
  for run in runs:
    shots.append(
      (
        f"tb_histograms_{run}.png",
        f"TensorBoard Histograms: the {run} run's kernels",
        fragment("histograms", run, "kernel"),
      )
    )
  shots.append(("tb_images_all.png", "TensorBoard Images: the confusion matrices", fragment("images")))
  return shots


def take(logdir: str, runs: list[str], out: str) -> tuple[list[tuple[str, str]], list[dict]]:
  """Serves `logdir` and photographs every page of `plan`; ([(title, file)], [record per shot])."""
  files, records = [], []
  os.makedirs(out, exist_ok=True)
  with tensorboard(logdir, runs) as base:
    for name, title, frag in plan(runs):
      path = os.path.join(out, name)
      window = TALL_WINDOW if frag.startswith("#images") else WINDOW
      share = shoot(base + "/" + frag, path, window=window)
      retried = share < CONTENT_SHARE
      if retried:
        share = shoot(base + "/" + frag, path, budget_ms=3 * BUDGET_MS, window=window)
      records.append({"file": name, "url_fragment": frag, "drawn_share": round(share, 3), "retried": retried})
      print(f"[monitoring] screenshot {name}: drawn share {share:.3f}", flush=True)
      if share >= CONTENT_SHARE:
        files.append((title, name))
  return files, records
