"""`jaxflow explain`: saliency against hand-computed values, the sanity checks, and the command end to
end for a CNN, an MLP (with vanishing layers), an RNN, a GCN and checkpoints written in sharded and pmap modes.

The runs are tiny and trained once per module; the parallel ones train in a subprocess with 2 forced
CPU devices (the device count must be set before jax is imported) and are explained here, on one device.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxflow
from jaxflow import cli
from jaxflow.inspect import saliency, sanity
from jaxflow.inspect import trained_run as subject
from jaxflow.training.state import params_sha256
from tests.conftest import ROOT, config_path

PNG = b"\x89PNG\r\n\x1a\n"
SMALL_CNN = [
  "model.conv_features=(8,16)",
  "model.widths=(32,)",
  "model.dropout_rate=0.0",
  "optim.schedule=constant",
  "optim.warmup_steps=0",
  "train.epochs=3",
]
# A sigmoid stack with tiny weights and plain SGD: every layer back multiplies the gradient by
# ~0.02 * sqrt(32) * 1/4, so the first layers' gradient norms sit below 1e-5 for the whole run.
VANISHING_MLP = [
  "model.activation=sigmoid",
  "model.widths=(32,32,32,32)",
  "model.kernel_init=normal(stddev=0.02)",
  "model.dropout_rate=0.0",
  "optim.name=sgd",
  "optim.lr=0.1",
  "train.epochs=2",
  "train.layer_stats_every=1",
]
SMALL_RNN = [
  "model.rnn_hidden=(16,)",
  "model.dropout_rate=0.0",
  "optim.schedule=constant",
  "optim.warmup_steps=0",
  "optim.lr=0.01",
  "train.epochs=1",
]
PARALLEL_MLP = ["model.widths=(32,)", "train.batch_size=64", "train.epochs=1", "train.histogram_every=1000"]
PARALLEL_MODES = ("sharded", "pmap")

PARALLEL_WORKER = """
import json, os, sys
os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
sys.path.insert(0, sys.argv[1])
import jax
import jaxflow
out = {}
for mode in sys.argv[4].split(","):
  config = jaxflow.load_config(sys.argv[2], [*sys.argv[5:], f"parallel.mode={mode}"])
  summary = jaxflow.train(config, os.path.join(sys.argv[3], mode), quiet=True)
  used, sha = summary["device"]["used"], summary["params_sha256"]
  out[mode] = {"devices": len(jax.devices()), "used": used, "params_sha256": sha}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def parallel_job(data_dir, tmp_path_factory):
  """Trains the sharded and pmap runs in a subprocess, started by the first test that needs them (not
  autouse: under pytest-xdist every worker that ran one of this module's tests would train them)."""
  root = str(tmp_path_factory.mktemp("explain_parallel"))
  log = open(root + ".log", "w")
  process = subprocess.Popen(
    [
      sys.executable,
      "-c",
      PARALLEL_WORKER,
      ROOT,
      config_path("digits_mlp.py"),
      root,
      ",".join(PARALLEL_MODES),
      *PARALLEL_MLP,
    ],
    stdout=log,
    stderr=subprocess.STDOUT,
    cwd=ROOT,
    env={**os.environ, "JAXFLOW_DATA_DIR": data_dir},
  )
  yield {"process": process, "root": root, "log": root + ".log"}
  if process.poll() is None:
    process.kill()
  process.wait()
  log.close()


def train(tmp_path_factory, name: str, config_file: str, overrides) -> str:
  workdir = str(tmp_path_factory.mktemp("explain") / name)
  jaxflow.train(jaxflow.load_config(config_path(config_file), list(overrides)), workdir, quiet=True)
  return workdir


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory) -> str:
  return train(tmp_path_factory, "cnn", "digits_cnn.py", SMALL_CNN)


@pytest.fixture(scope="module")
def cnn_explained(cnn_run) -> dict:
  """The CNN explained through the CLI, with --tb: exit status, the printed JSON line, the report."""
  import contextlib
  import io

  stdout = io.StringIO()
  with contextlib.redirect_stdout(stdout):
    status = cli.main(["jaxflow", "explain", f"--workdir={cnn_run}", "--examples=8", "--tb"])
  printed = json.loads(stdout.getvalue().strip().splitlines()[-1])
  with open(os.path.join(printed["out"], "report.json")) as f:
    return {"status": status, "printed": printed, "report": json.load(f)}


# --- saliency against hand-computed values -----------------------------------------------------------


def _linear(params, x):
  """f(x) = W^T vec(x) + b: [b, 4, 3] -> [b, 5]."""
  return jnp.reshape(x, (x.shape[0], -1)) @ params["w"] + params["b"]


@pytest.fixture(scope="module")
def linear():
  rng = np.random.default_rng(0)
  params = {"w": jnp.asarray(rng.normal(size=(12, 5)), jnp.float32), "b": jnp.asarray(rng.normal(size=5), jnp.float32)}
  x = jnp.asarray(rng.normal(size=(3, 4, 3)), jnp.float32)
  target = jnp.asarray([0, 3, 4], jnp.int32)
  expected_grad = np.stack([np.asarray(params["w"])[:, t].reshape(4, 3) for t in np.asarray(target)])
  return params, x, target, expected_grad


def test_linear_model_gradient_and_gradient_x_input(linear):
  """The gradient of w_t . x is w_t; gradient x input is w_t * x. Each jitted (one program; op by op, every
  primitive compiles alone), as explain runs them."""
  params, x, target, w = linear
  jitted = lambda fn: jax.jit(functools.partial(fn, _linear))  # noqa: E731
  np.testing.assert_allclose(jitted(saliency.vanilla_gradient)(params, x, target), w, rtol=1e-6)
  np.testing.assert_allclose(jitted(saliency.gradient_x_input)(params, x, target), w * np.asarray(x), rtol=1e-6)
  np.testing.assert_allclose(
    jitted(saliency.scores)(params, x, target),
    [np.asarray(_linear(params, x))[i, t] for i, t in enumerate(np.asarray(target))],
    rtol=1e-6,
  )


def test_linear_model_integrated_gradients_are_exact(linear):
  """IG of a linear model is (x - baseline) * w whatever the rule and the number of steps: the
  gradient is constant along the path. Completeness then holds exactly."""
  params, x, target, w = linear
  baseline = jnp.full_like(x, 0.25)
  delta = saliency.scores(_linear, params, x, target) - saliency.scores(_linear, params, baseline, target)
  for rule, steps in [(rule, 3) for rule in saliency.RULES] + [("trapezoid", 1), ("left", 1), ("trapezoid", 64)]:
    ig = jax.jit(functools.partial(saliency.integrated_gradients, _linear, steps=steps, rule=rule))(
      params, x, target, baseline=baseline
    )
    np.testing.assert_allclose(ig, (np.asarray(x) - 0.25) * w, rtol=1e-5, atol=1e-6, err_msg=f"{rule} {steps}")
    assert sanity.completeness_gap(ig, delta, np.zeros(3))["max_abs_error"] < 1e-5


def test_linear_model_smoothgrad_is_the_gradient(linear):
  """Noise does not move a constant gradient: SmoothGrad of a linear model is w."""
  params, x, target, w = linear
  smooth = jax.jit(functools.partial(saliency.smoothgrad, _linear, samples=4))
  np.testing.assert_allclose(smooth(params, x, target, key=jax.random.key(3, impl="rbg")), w, rtol=1e-5)


def test_smoothgrad_noise_comes_from_the_key():
  apply_fn = lambda p, x: jnp.tanh(jnp.reshape(x, (x.shape[0], -1)) @ p)  # noqa: E731
  p = jnp.asarray(np.random.default_rng(1).normal(size=(6, 2)), jnp.float32)
  x = jnp.asarray(np.random.default_rng(2).normal(size=(2, 6)), jnp.float32)
  target = jnp.zeros(2, jnp.int32)
  run = jax.jit(functools.partial(saliency.smoothgrad, apply_fn, samples=8))
  key = lambda seed: jax.random.key(seed, impl="rbg")  # noqa: E731  (what explain draws with: it compiles fast)
  a, b, c = run(p, x, target, key=key(1)), run(p, x, target, key=key(1)), run(p, x, target, key=key(2))
  np.testing.assert_array_equal(a, b)
  assert not np.allclose(a, c)


def test_rank_correlation_matches_scipy():
  from scipy import stats

  rng = np.random.default_rng(0)
  a, b = rng.normal(size=(4, 8, 8)), rng.normal(size=(4, 8, 8))
  rho = sanity.rank_correlations(a, b)
  np.testing.assert_allclose(
    rho, [stats.spearmanr(np.abs(a[i]).ravel(), np.abs(b[i]).ravel()).statistic for i in range(4)]
  )
  np.testing.assert_allclose(sanity.rank_correlations(a, 2 * a), 1.0)
  tied_a, tied_b = np.round(a, 0), np.where(np.abs(b) < 0.7, 0.0, b)  # tied ranks: the zeros off a digit's ink
  np.testing.assert_allclose(
    sanity.rank_correlations(tied_a, tied_b),
    [stats.spearmanr(np.abs(tied_a[i]).ravel(), np.abs(tied_b[i]).ravel()).statistic for i in range(4)],
  )
  assert np.isnan(sanity.rank_correlations(np.zeros((1, 3)), a[:1, 0, :3]))[0]  # a constant map has no ranking


# --- sanity checks on the trained CNN ------------------------------------------------------------------


def reference_integrated_gradients(apply_fn, params, x, target, steps: int) -> np.ndarray:
  """IG from its definition, written here (not jaxflow's path/quadrature code): x * the trapezoid average of
  d logit_target / dx at k/steps * x, k = 0..steps, each gradient one jax.grad call, summed in float64."""
  grad = jax.jit(jax.grad(lambda inputs: jnp.sum(apply_fn(params, inputs)[jnp.arange(len(target)), target])))
  total = np.zeros(x.shape)
  for k in range(steps + 1):
    total += (0.5 if k in (0, steps) else 1.0) / steps * np.asarray(grad(x * (k / steps)), np.float64)
  return np.asarray(x, np.float64) * total


@pytest.mark.slow
def test_ig_completeness_on_the_trained_cnn(cnn_run, cnn_explained):
  """sum(IG attributions) = f(x) - f(0) within 2% of the largest |f(x) - f(0)| at 64 trapezoid steps
  (measured ~1%), and the gap shrinks as the steps grow (measured max error 0.22 at 4 steps, 0.017 at
  64, 0.008 at 128). Both jaxflow's attributions and the report's gap are checked against IG computed here
  from the definition, on the same 8 examples. Tolerances: the same float32 gradients summed in another
  order differ by ~1e-7 relative; attributions are <= ~1 per pixel and the gap a difference of sums of 64 of
  them against logits of ~10-20, so 1e-5 (attributions) and 1e-4 (the gap) are ~10-100x that rounding, while
  a quadrature off by one point (left/right rule) moves the gap by ~|f(x) - f(0)| / 128 ~ 0.1."""
  run = subject.load_run(cnn_run, randomize=False)
  examples = subject.choose_examples(run, 8)
  x, target = jnp.asarray(examples.x), jnp.asarray(examples.target)
  reference = reference_integrated_gradients(examples.apply_fn, run.params, x, target, 64)
  apply = jax.jit(examples.apply_fn)  # one program, not the model op by op
  logits = [np.asarray(apply(run.params, z), np.float64) for z in (x, jnp.zeros_like(x))]
  delta = (logits[0] - logits[1])[np.arange(len(target)), np.asarray(target)]
  reference_gap = float(np.max(np.abs(reference.reshape(len(target), -1).sum(1) - delta)))
  ig = jax.jit(functools.partial(saliency.integrated_gradients, examples.apply_fn, steps=64))(run.params, x, target)
  np.testing.assert_allclose(ig, reference, atol=1e-5)
  assert reference_gap <= 0.02 * float(np.max(np.abs(delta)))
  ig_check = cnn_explained["report"]["sanity"]["ig_completeness"]
  by_steps = ig_check["by_steps"]
  assert by_steps["64"]["max_abs_error"] == pytest.approx(reference_gap, abs=1e-4)
  assert ig_check["shown"]["max_abs_error"] == pytest.approx(reference_gap, abs=1e-4)
  errors = [by_steps[s]["max_abs_error"] for s in ("4", "16", "64", "128")]
  assert errors == sorted(errors, reverse=True) and errors[-1] < errors[0] / 5
  assert ig_check["shown"]["passed"] and ig_check["shown"]["steps"] == 64


@pytest.mark.slow
def test_model_randomization_is_reported_and_well_below_one(cnn_explained):
  """Adebayo et al.'s check: the trained model's gradient maps rank pixels unlike a re-initialized
  model's (measured mean Spearman ~0.1). Gradient x input and IG from a zero baseline stay high (~0.9):
  both are zero wherever the input is, in both models; on the input's support they fall (~0.4)."""
  randomization = cnn_explained["report"]["sanity"]["model_randomization"]
  assert set(randomization) == set(saliency.METHODS)
  for stats in randomization.values():
    assert stats["count"] == 8 and len(stats["per_example"]) == 8
    assert -1 <= stats["mean"] <= 1
  assert randomization["vanilla_gradient"]["mean"] < 0.5
  assert randomization["smoothgrad"]["mean"] < 0.6
  for method in ("gradient_x_input", "integrated_gradients"):
    assert randomization[method]["support_mean"] < randomization[method]["mean"]


# --- the command end to end ----------------------------------------------------------------------------


def _check_pictures(result_out: str, report: dict, expected: set[str]) -> None:
  names = set(report["images"])
  assert {f"{e}.png" for e in expected} <= names, names
  with open(os.path.join(result_out, "index.html")) as f:
    page = f.read()
  for name in names:
    path = os.path.join(result_out, name)
    with open(path, "rb") as f:
      assert f.read(8) == PNG
    assert f"src='{name}'" in page  # relative links
  from PIL import Image

  for name in names:
    with Image.open(os.path.join(result_out, name)) as image:
      image.verify()
    with Image.open(os.path.join(result_out, name)) as image:
      assert min(image.size) > 100 and image.mode == "RGB"


@pytest.mark.slow
def test_explain_cnn_writes_pictures_page_and_tensorboard(cnn_run, cnn_explained):
  from tensorboard.backend.event_processing import event_accumulator

  assert cnn_explained["status"] == 0
  printed, report = cnn_explained["printed"], cnn_explained["report"]
  assert printed["out"] == os.path.join(cnn_run, "explain") and printed["page"] == os.path.join(
    cnn_run, "explain", "index.html"
  )
  assert report["checkpoint"]["which"] == "best" and report["family"] == "image"
  phases = report["phases"]  # where explain's time went, e.g. the saliency program's compile
  assert {"load_run", "saliency_trained", "saliency_randomized", "render/saliency", "tensorboard"} <= set(phases)
  assert all(v is None or v >= 0 for v in phases.values()) and sum(v or 0 for v in phases.values()) > 0
  _check_pictures(
    printed["out"],
    report,
    {"kernels", "activations_conv_0", "activations_conv_1", "saliency", "saliency_randomized", "sanity"},
  )
  tb = os.path.join(cnn_run, "tb")
  own = [f for f in os.listdir(tb) if ".explain." not in f]
  assert own and len(os.listdir(tb)) == len(own) + 1  # one file of its own beside the run's
  acc = event_accumulator.EventAccumulator(tb, size_guidance={event_accumulator.IMAGES: 0})
  acc.Reload()
  tags = set(acc.Tags()["images"])
  assert {f"explain/{os.path.splitext(n)[0]}" for n in report["images"]} <= tags
  events = acc.Images("explain/saliency")
  assert events[-1].step == report["checkpoint"]["step"]
  assert events[-1].encoded_image_string[:8] == PNG
  from PIL import Image

  with Image.open(os.path.join(printed["out"], "saliency.png")) as image:
    assert (events[-1].width, events[-1].height) == image.size
  assert acc.Scalars("eval/accuracy")  # the run's own events still read alongside


@pytest.mark.slow
def test_explain_mlp_marks_its_vanishing_layers(tmp_path_factory):
  workdir = train(tmp_path_factory, "mlp_vanishing", "digits_mlp.py", VANISHING_MLP)
  result = jaxflow.explain(workdir, examples=4, out=os.path.join(workdir, "pictures"))
  assert result["out"] == os.path.join(workdir, "pictures")
  with open(result["report"]) as f:
    report = json.load(f)
  _check_pictures(result["out"], report, {"kernels", "saliency", "layer_stats"})
  vanishing = {(v["layer"], v["statistic"]) for v in report["layers"]["vanishing"]}
  assert ("dense_0", "grad_norm") in vanishing
  assert ("head", "grad_norm") not in vanishing and not report["layers"]["exploding"]
  assert report["layers"]["records"] == 2
  assert all(v["min"] < 1e-5 for v in report["layers"]["vanishing"])


@pytest.mark.slow
def test_explain_rnn_gives_saliency_per_time_step(tmp_path_factory):
  workdir = train(tmp_path_factory, "rnn", "digits_rnn.py", SMALL_RNN)
  result = jaxflow.explain(workdir, examples=4)
  with open(result["report"]) as f:
    report = json.load(f)
  _check_pictures(result["out"], report, {"kernels", "saliency", "saliency_time_steps", "sanity"})
  assert report["model"] == "rnn" and len(report["examples"]) == 4


@pytest.mark.slow
def test_explain_gcn_draws_node_importance(tmp_path_factory):
  # 3 epochs, not 20: what is checked is the report's structure (pictures, which nodes are explained, counts),
  # none of it the model's accuracy.
  workdir = train(tmp_path_factory, "karate", "karate_gcn.py", ["train.epochs=3"])
  result = jaxflow.explain(workdir, examples=4)
  with open(result["report"]) as f:
    report = json.load(f)
  _check_pictures(result["out"], report, {"kernels", "node_importance", "sanity"})
  assert report["family"] == "graph" and len(report["examples"]) == 4
  assert all(e["index"] not in (0, 33) for e in report["examples"])  # the explained nodes are unlabelled ones
  assert report["sanity"]["model_randomization"]["vanilla_gradient"]["count"] == 4


@pytest.mark.slow
@pytest.mark.parametrize("mode", PARALLEL_MODES)
def test_explain_a_checkpoint_written_in_a_parallel_mode(parallel_job, mode):
  """Trained on 2 forced CPU devices (subprocess), explained here on 1: the parameters read back
  are the ones the run ended with."""
  assert parallel_job["process"].wait(timeout=300) == 0, open(parallel_job["log"]).read()[-3000:]
  with open(parallel_job["log"]) as f:
    trained = json.loads(f.read().strip().splitlines()[-1])[mode]
  assert trained["devices"] == 2 and trained["used"] == 2
  workdir = os.path.join(parallel_job["root"], mode)
  with open(os.path.join(workdir, "config.json")) as f:
    assert json.load(f)["config"]["parallel"]["mode"] == mode
  run = subject.load_run(workdir)
  assert params_sha256(run.params) == trained["params_sha256"]
  result = jaxflow.explain(workdir, examples=4)
  with open(result["report"]) as f:
    report = json.load(f)
  _check_pictures(result["out"], report, {"kernels", "saliency", "sanity"})


def test_explain_without_checkpoints_is_a_one_line_error(tmp_path, capsys):
  workdir = tmp_path / "untrained"
  workdir.mkdir()
  config = jaxflow.load_config(config_path("digits_mlp.py"))
  (workdir / "config.json").write_text(json.dumps({"hash": "x", "config": json.loads(config.to_json_best_effort())}))
  assert cli.main(["jaxflow", "explain", f"--workdir={workdir}"]) == 2
  err = capsys.readouterr().err.strip()
  assert (
    err == f"jaxflow explain: error: workdir {workdir} has no checkpoints: train it first (jaxflow train "
    f"--workdir={workdir} ...)"
  )
  assert not (workdir / "checkpoints").exists() and not (workdir / "explain").exists()  # nothing written
  assert cli.main(["jaxflow", "explain", f"--workdir={tmp_path / 'missing'}"]) == 2
  assert "does not exist" in capsys.readouterr().err and len(err.splitlines()) == 1
