"""jaxflow seeds: statistics against hand/scipy values, seed configs, vmap == sequential per seed, the
report a reader opens, reruns that skip finished seeds, the sources study, determinism, compare."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from scipy import stats as scipy_stats

import jaxflow
from jaxflow import cli, rng
from jaxflow.config import ConfigError
from jaxflow.run.assemble import Compiled
from jaxflow.seeds import compare as seeds_compare
from jaxflow.seeds import mode_choice, stats, sweeps
from jaxflow.seeds import report as seeds_report
from jaxflow.seeds import study as seeds_lib
from jaxflow.workdir import write_config
from tests.conftest import config_path, latest_params, max_param_diff
from tests.hparams_readback import read_hparams

TINY = ["model.widths=(32,)", "train.epochs=2", "train.batch_size=128", "train.histogram_every=1000"]
PNG = b"\x89PNG\r\n\x1a\n"


def tiny(*overrides):
  return jaxflow.load_config(config_path("digits_mlp.py"), [*TINY, *overrides])


# -- statistics ---------------------------------------------------------------------------------------


def test_describe_and_bootstrap():
  d = stats.describe([0.9, 0.92, 0.94, 0.96])
  assert d["n"] == 4 and d["mean"] == pytest.approx(0.93) and d["median"] == pytest.approx(0.93)
  assert d["std"] == pytest.approx(np.std([0.9, 0.92, 0.94, 0.96], ddof=1))
  lo, hi = d["ci95_mean"]
  assert 0.9 <= lo < 0.93 < hi <= 0.96
  assert stats.bootstrap_ci([0.5, 0.5, 0.5]) == [0.5, 0.5]
  assert stats.bootstrap_ci([1.0, 2.0, 3.0], seed=1) == stats.bootstrap_ci([1.0, 2.0, 3.0], seed=1)


def test_seeds_needed_is_the_smallest_n_of_a_narrow_enough_t_interval():
  n = stats.seeds_needed(0.01, 0.005)
  t = lambda k: scipy_stats.t.ppf(0.975, k - 1) * 0.01 / np.sqrt(k)  # noqa: E731
  assert t(n) <= 0.005 < t(n - 1)
  assert n == 18
  assert stats.seeds_needed(0.0, 0.005) == 1


def test_compare_claims_a_difference_only_with_the_seeds_behind_it():
  a, b = [0.95, 0.96, 0.955, 0.958, 0.962], [0.90, 0.91, 0.905, 0.908, 0.899]
  result = stats.compare(a, b)
  assert result["a_beats_b"] and not result["b_beats_a"]
  assert result["welch_t_p"] == pytest.approx(scipy_stats.ttest_ind(a, b, equal_var=False).pvalue)
  assert result["mann_whitney_p"] == pytest.approx(scipy_stats.mannwhitneyu(a, b).pvalue)
  lo, hi = result["difference_ci95"]
  assert lo < result["difference"] < hi and lo > 0
  noisy = stats.compare([0.95, 0.90, 0.97], [0.94, 0.96, 0.91])
  assert not noisy["a_beats_b"] and not noisy["b_beats_a"]


def test_variance_by_source():
  v = stats.variance_by_source({"init": [1.0, 3.0], "data": [1.0, 2.0], "all": [0.0, 3.0], "none": [2.0, 2.0]})
  assert v["init"]["variance"] == 2.0 and v["data"]["variance"] == 0.5 and v["none"]["variance"] == 0.0
  assert v["init"]["share"] == pytest.approx(0.8) and v["data"]["share"] == pytest.approx(0.2)
  assert v["sum_of_sources_over_all"] == pytest.approx(2.5 / 4.5)


# -- seed configs -------------------------------------------------------------------------------------


def test_vary_changes_only_the_named_streams():
  config = tiny()
  a, b = (rng.streams(sweeps.seed_config(config, i, ("init",))) for i in (0, 1))
  key = lambda k: tuple(np.asarray(jax.random.key_data(k)).tolist())  # noqa: E731
  assert key(a["init"]) != key(b["init"])
  for name in ("data", "dropout", "augment", "noise", "sampler"):
    assert key(a[name]) == key(b[name])
  everything = [rng.streams(sweeps.seed_config(config, i, sweeps.SOURCES)) for i in (0, 1)]
  assert all(key(everything[0][n]) != key(everything[1][n]) for n in rng.STREAM_NAMES)


@pytest.mark.parametrize("vary, says", [("init,wind", "'wind' is not a PRNG stream"), ("bias", "allowed: init, data")])
def test_unknown_stream_is_refused(vary, says):
  with pytest.raises(ConfigError, match=says):
    sweeps.parse_vary(vary)


def test_cli_bad_seeds_input_is_one_line_and_writes_nothing(tmp_path, capsys):
  workdir = tmp_path / "never"
  code = cli.main(
    ["jaxflow", "seeds", f"--config={config_path('digits_mlp.py')}", "--vary=wind", f"--workdir={workdir}"]
  )
  err = capsys.readouterr().err.strip()
  assert code == 2 and "--vary=wind" in err and "\n" not in err and not workdir.exists()


# -- studies --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_modes(tmp_path_factory):
  root = tmp_path_factory.mktemp("seeds")
  config = tiny()
  out = {}
  for mode in ("vmap", "sequential"):
    out[mode] = (
      str(root / mode),
      seeds_lib.run_seeds(config, str(root / mode), seeds=3, vary="init,dropout", mode=mode),
    )
  return out


@pytest.mark.slow
def test_vmap_and_sequential_give_the_same_seeds(two_modes):
  (_, vmapped), (_, sequential) = two_modes["vmap"], two_modes["sequential"]
  for v, s in zip(vmapped["sweeps"][0]["seeds"], sequential["sweeps"][0]["seeds"]):
    assert v["status"] == s["status"] == "completed"
    assert round(v["final"], 3) == round(s["final"], 3)
    assert (
      max_param_diff(latest_params(v["workdir"]), latest_params(s["workdir"])) <= 1e-5
    )  # the same math, other rounding (batched matmuls)
  assert len({r["final"] for r in vmapped["sweeps"][0]["seeds"]}) > 1  # the seeds do differ


@pytest.mark.slow
def test_tensorboard_hparams_lists_every_seed_with_its_streams_and_finals(two_modes):
  workdir, report = two_modes["vmap"]
  experiment, sessions = read_hparams(workdir)
  assert {"sweep", "seed_index", "seeds.init", "seeds.dropout"} <= set(experiment["hparams"])
  assert experiment["metrics"][0] == "hparams/eval/accuracy"
  for i, seed in enumerate(report["sweeps"][0]["seeds"]):
    session = sessions[f"init+dropout/seed_{i:03d}/tb"]
    assert session["hparams"] == {"sweep": "init+dropout", "seed_index": i, "seeds.init": i, "seeds.dropout": i}
    assert session["metrics"]["eval/accuracy"] == pytest.approx(seed["final"], abs=1e-7) and session["status"] == 1


@pytest.mark.slow
def test_report_a_reader_opens(two_modes):
  workdir, report = two_modes["vmap"]
  assert {"report.json", "report.md", "plots"} <= set(os.listdir(workdir))
  for png in ("curves.png", "finals.png"):
    assert open(os.path.join(workdir, "plots", png), "rb").read(8) == PNG
  sweep = report["sweeps"][0]
  finals = [r["final"] for r in sweep["seeds"]]
  assert sweep["final"]["mean"] == pytest.approx(np.mean(finals)) and sweep["final"]["std"] == pytest.approx(
    np.std(finals, ddof=1)
  )
  assert sweep["curves"]["epochs"] == [1, 2] and len(sweep["curves"]["per_seed"]) == 3
  assert sweep["seeds_needed"]["n"] == stats.seeds_needed(sweep["final"]["std"], 0.005)
  assert report["mode"]["mode"] == "vmap"
  markdown = open(os.path.join(workdir, "report.md")).read()
  assert "| init+dropout | init, dropout | 3 |" in markdown


@pytest.mark.slow
def test_each_seed_is_a_normal_run_and_a_rerun_skips_finished_seeds(two_modes):
  workdir, report = two_modes["sequential"]
  first = report["sweeps"][0]["seeds"][0]["workdir"]
  assert {"config.json", "metrics.jsonl", "summary.json", "checkpoints", "tb"} <= set(os.listdir(first))
  stamp = os.path.getmtime(os.path.join(first, "summary.json"))
  again = seeds_lib.run_seeds(tiny(), workdir, seeds=3, vary="init,dropout", mode="sequential", plots=False)
  assert os.path.getmtime(os.path.join(first, "summary.json")) == stamp  # not trained again
  assert again["plots"] == {} and "![" not in open(os.path.join(workdir, "report.md")).read()  # plots=False
  assert [r["params_sha256"] for r in again["sweeps"][0]["seeds"]] == [
    r["params_sha256"] for r in report["sweeps"][0]["seeds"]
  ]
  # A seed's run resumes like any run: `jaxflow.train` on its config finds it finished.
  summary = jaxflow.train(sweeps.seed_config(tiny(), 0, ("init", "dropout")), first, quiet=True)
  assert (
    summary["resumed_from_step"] == summary["steps"]
    and summary["params_sha256"] == report["sweeps"][0]["seeds"][0]["params_sha256"]
  )


@pytest.mark.slow
def test_auto_times_both_candidates_keeps_the_faster_and_trains_what_that_mode_trains(two_modes, tmp_path, monkeypatch):
  cache = tmp_path / "modes.json"
  monkeypatch.setenv("JAXFLOW_SEEDS_MODE_CACHE", str(cache))
  report = seeds_lib.run_seeds(tiny(), str(tmp_path / "a"), seeds=3, vary="init,dropout", mode="auto")
  choice = report["mode"]
  assert choice["cached"] is False
  timings = choice["timings"]
  assert set(timings) == {"sequential", "vmap"} and all(t["seconds_per_step_all_seeds"] > 0 for t in timings.values())
  assert choice["mode"] == min(timings, key=lambda k: timings[k]["seconds_per_step_all_seeds"])
  assert "sequential" in choice["why"] and "vmap" in choice["why"]
  # The winner ran the timed programs; its seeds are bitwise those of the same mode chosen by hand.
  _, by_hand = two_modes[choice["mode"]]
  assert [r["params_sha256"] for r in report["sweeps"][0]["seeds"]] == [
    r["params_sha256"] for r in by_hand["sweeps"][0]["seeds"]
  ]
  again = seeds_lib.run_seeds(tiny(), str(tmp_path / "a"), seeds=3, vary="init,dropout", mode="auto")
  assert "finished" in again["mode"]["why"] and "nothing was trained or timed" in again["mode"]["why"]
  assert again["mode"]["mode"] == choice["mode"] and again["mode"]["timings"] == timings  # how they were trained
  # Another study of the same config (other streams varied) reuses the decision instead of timing again;
  # another seed count, or the cache switched off, times afresh.
  other = seeds_lib.run_seeds(tiny(), str(tmp_path / "b"), seeds=3, vary="data", mode="auto")
  assert other["mode"]["cached"] is True and other["mode"]["timings"] == timings
  # From the cache nothing is compiled yet: each candidate costs its compile plus its steps.
  predicted = {
    m: t["compile_seconds"] + t["seconds_per_step_all_seeds"] * t["steps_per_epoch"] * 2 for m, t in timings.items()
  }
  assert other["mode"]["mode"] == min(predicted, key=predicted.get)
  assert str(cache) in other["mode"]["why"]
  monkeypatch.setenv("JAXFLOW_SEEDS_MODE_CACHE", "off")
  assert mode_choice.choose_mode(tiny(), 3, Compiled(), vary=sweeps.SOURCES)["cached"] is False
  assert list(json.loads(cache.read_text())) and len(json.loads(cache.read_text())) == 1


@pytest.mark.slow
def test_auto_on_a_one_step_model_checks_the_evaluation_pass_first():
  """A conv model on CPU runs one step per dispatch: auto times each candidate's evaluation pass first and
  steps only the candidates whose forward pass is not already a clear loser."""
  config = jaxflow.load_config(
    config_path("digits_cnn.py"), ["train.epochs=1", "model.conv_features=(8,)", "model.widths=(16,)"]
  )
  choice = mode_choice.choose_mode(config, 4, Compiled(), vary=sweeps.SOURCES)
  timings = choice["timings"]
  fastest_eval = min(t["eval_seconds_all_seeds"] for t in timings.values())
  for name, t in timings.items():
    if t.get("pruned"):
      assert t["eval_seconds_all_seeds"] > mode_choice.CLEAR_LOSS * fastest_eval and t["timed_calls"] == 0
      assert f"{name} not stepped" in choice["why"] and name != choice["mode"]
    else:
      assert t["timed_calls"] >= 1 and t["seconds_per_step_all_seeds"] > 0
  assert timings[choice["mode"]]["seconds_per_step_all_seeds"] == min(
    t["seconds_per_step_all_seeds"] for t in timings.values() if not t.get("pruned")
  )


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
  root = tmp_path_factory.mktemp("sources")
  return root, seeds_lib.run_seeds(tiny(), str(root), seeds=2, study="sources", mode="vmap")


@pytest.mark.slow
def test_sources_study_decomposes_the_variance(sources):
  tmp_path, report = sources
  names = [s["name"] for s in report["sweeps"]]
  assert names == ["init", "data", "dropout", "one_bit", "all", "none"]
  assert set(report["sources_not_drawn"]) == {"augment", "noise", "sampler"}  # every stream is accounted for
  assert report["resolution"]["value"] == pytest.approx(1 / 360) and report["resolution"]["finer"] == "eval/loss"
  markdown = (tmp_path / "report.md").read_text()
  assert (
    "| sampler | not used by this config |" in markdown and "| sampler | 0 | - | not used by this config |" in markdown
  )
  none = next(s for s in report["sweeps"] if s["name"] == "none")
  assert none["final"]["std"] == 0.0  # nothing varies: the CPU is deterministic
  assert len({r["params_sha256"] for r in none["seeds"]}) == 1
  shares = [report["variance_by_source"][s]["share"] for s in ("init", "data", "dropout")]
  assert all(s is not None for s in shares) and sum(shares) == pytest.approx(1.0)
  assert report["variance_by_source"]["one_bit"]["share"] is None  # a perturbation: outside the streams' sum
  below = [s for s, v in report["variance_by_source"].items() if isinstance(v, dict) and 0 < v["std"] < 1 / 360]
  said = [w.split(":")[0] for w in report["warnings"] if "below the metric's resolution" in w]
  assert said == [f"sweep {s!r}" for s in below]  # each said once
  assert "| one_bit | varied: each seed flips the lowest mantissa bit of one initial weight |" in markdown
  assert "| hardware (theirs: cuDNN) | not applicable: needs a GPU; no GPU here (cpu backend" in markdown


@pytest.mark.slow
def test_one_bit_sweep_vmapped_and_sequential_give_the_same_seeds(sources, tmp_path):
  """The vmapped one_bit sweep of the sources study against the same seeds trained one by one: the same
  weight flipped, bitwise the same initial parameters (tests/seeds/test_spread.py), the same final metrics
  and eval predictions; trained parameters equal to rounding (a vmapped program batches its matmuls)."""
  root, study = sources
  vmapped = next(s for s in study["sweeps"] if s["name"] == "one_bit")
  sequential = seeds_lib.run_seeds(tiny(), str(tmp_path), seeds=2, vary="one_bit", mode="sequential", plots=False)
  one = sequential["sweeps"][0]
  assert one["name"] == "one_bit" and one["mode"] == "sequential" and vmapped["mode"] == "vmap"
  assert one["spread"]["one_bit_sites"] == vmapped["spread"]["one_bit_sites"]
  assert len({s["index"] for s in one["spread"]["one_bit_sites"]}) == 2
  for v, s in zip(vmapped["seeds"], one["seeds"], strict=True):
    assert v["final"] == s["final"] and v["best"] == s["best"]
    assert max_param_diff(latest_params(v["workdir"]), latest_params(s["workdir"])) <= 1e-5
  a, b = (np.load(os.path.join(w, "one_bit", "predictions.npz")) for w in (root, tmp_path))
  assert np.array_equal(a["predictions"], b["predictions"]) and np.array_equal(a["labels"], b["labels"])


@pytest.mark.slow
def test_every_study_reports_its_spread_the_ensemble_and_the_disputed_examples(two_modes):
  workdir, report = two_modes["vmap"]
  sweep = report["sweeps"][0]
  spread = sweep["spread"]
  assert spread["predictions_check"] == {"params_verified": True, "accuracy_matches_summary": True}
  assert [spread["accuracy_std"]["std"], spread["accuracy_std"]["n"]] == [pytest.approx(sweep["final"]["std"]), 3]
  for key in ("accuracy_std", "loss_std"):
    lo, hi = spread[key]["ci95"]
    assert lo <= spread[key]["std"] <= hi
  agree = spread["agreement"]
  for key in ("disagreement", "correctness_correlation"):
    assert agree[key]["ci95"][0] <= agree[key]["mean"] <= agree[key]["ci95"][1]
  ensemble = agree["ensemble"]
  assert ensemble["single_accuracies"] == pytest.approx([r["final"] for r in sweep["seeds"]])
  assert ensemble["mean_single_accuracy"] == pytest.approx(sweep["final"]["mean"])
  saved = np.load(os.path.join(workdir, spread["files"]["predictions"]))
  assert saved["predictions"].shape == (3, 360) and agree["examples"] == 360
  assert saved["per_example_disagreement"].mean() == pytest.approx(agree["disagreement"]["mean"])
  disputed = np.load(os.path.join(workdir, spread["files"]["disputed_npz"]))
  assert disputed["inputs"].shape[1:] == (8, 8, 1) and disputed["predictions"].shape[0] == 3
  assert np.array_equal(disputed["labels"], saved["labels"][disputed["indices"]])
  csv = open(os.path.join(workdir, spread["files"]["disputed_csv"])).read().splitlines()
  assert (
    csv[0].startswith("rank,index,label,ensemble_prediction,disagreement") and len(csv) == len(disputed["indices"]) + 1
  )
  assert open(os.path.join(workdir, spread["files"]["disputed_png"]), "rb").read(8) == PNG
  assert report["hardware"]["applicable"] is False and report["published"]["model"] == "ResNet-14"
  markdown = open(os.path.join(workdir, "report.md")).read()
  assert "| ensemble accuracy | mean single-seed accuracy |" in markdown and "CIFAR-10" in markdown


def test_a_std_below_one_eval_example_or_a_frozen_metric_is_flagged():
  sweeps = [
    {"name": "dropout", "final": {"std": 0.0}, "seeds": [{"params_sha256": "a"}, {"params_sha256": "b"}]},
    {"name": "init", "final": {"std": 0.001}, "seeds": [{"params_sha256": "c"}, {"params_sha256": "d"}]},
    {"name": "none", "final": {"std": 0.0}, "seeds": [{"params_sha256": "e"}, {"params_sha256": "e"}]},
    {"name": "data", "final": {"std": 0.02}, "seeds": [{"params_sha256": "f"}, {"params_sha256": "g"}]},
  ]
  res = seeds_report.resolution("accuracy", 360)
  warnings = seeds_report.resolution_warnings(sweeps, None, res, "accuracy")
  assert len(warnings) == 2
  assert warnings[0].startswith("sweep 'dropout': its 2 seeds trained different parameters but score exactly the same")
  assert warnings[1].startswith("sweep 'init': std 0.001 is below the metric's resolution (one eval example of 360)")
  assert all("eval/loss" in w for w in warnings)
  assert seeds_report.resolution("loss", 360)["value"] is None


@pytest.mark.slow
def test_one_process_study_leaves_the_backend_to_its_first_run():
  """The multi-process checks (join, the lock, agree) start no backend in one process: train.deterministic's
  XLA_FLAGS are set by the first run, before the backend starts (run.determinism_flags), as without them."""
  code = (
    "import sys, jaxflow; from jax._src import xla_bridge; from jaxflow.seeds import distributed; "
    "config = jaxflow.load_config(sys.argv[1]); distributed.join(config, mode='sequential', check_determinism=False); "
    "distributed.agree(['a', 'b']); assert distributed.is_main(); print(xla_bridge.backends_are_initialized())"
  )
  done = subprocess.run([sys.executable, "-c", code, config_path("digits_mlp.py")], capture_output=True, text=True)
  assert done.stdout.strip() == "False", done.stderr[-2000:]


def test_check_determinism_says_what_was_bitwise(tmp_path):
  report = seeds_lib.run_seeds(tiny(), str(tmp_path), seeds=2, vary="init", mode="sequential", check_determinism=True)
  checks = {c["check"]: c for c in report["determinism"]["checks"]}
  assert checks["the same seed trained twice in one process"]["bitwise_equal"] is True
  # XLA:CPU: the same program on the same devices in a fresh process repeats every bit.
  assert checks["the same seed in another process"]["bitwise_equal"] is True
  sharded = next(c for name, c in checks.items() if name.startswith("1 device against 2"))
  assert sharded["bitwise_equal"] is not None and sharded["max_abs_diff"] <= 1e-5
  # Not bitwise (the all-reduce sums in another order: 3e-8 here), so where they part: a checkpointed step and a
  # parameter array, with a plot.
  parted = sharded["divergence"]
  assert sharded["bitwise_equal"] is False and parted["steps"] == [11, 22]  # 2 epochs of 11 steps
  first = parted["steps"].index(parted["first_step"])
  assert parted["layers"][parted["first_layer"]][first] > 0 and parted["first_layer"].startswith("dense_")
  assert all(v[i] == 0 for v in parted["layers"].values() for i in range(first))  # equal before it
  assert max(v[-1] for v in parted["layers"].values()) == pytest.approx(sharded["max_abs_diff"])
  assert f"first differs at step {parted['first_step']}" in sharded["statement"]
  assert open(os.path.join(str(tmp_path), sharded["plot"]), "rb").read(8) == PNG
  assert f"![where they part]({sharded['plot']})" in open(os.path.join(str(tmp_path), "report.md")).read()
  assert "does not apply on the cpu backend" in checks["gpu deterministic ops"]["statement"]
  assert "xla_gpu_deterministic_ops" in " ".join(report["determinism"]["flags"])


def _fake_study(path, values, metric="eval/accuracy", epochs=None, sweeps=("all",)):
  """A study's report.json (and, with `epochs`, its first seed's config.json)."""
  os.makedirs(path, exist_ok=True)
  report = {"metric": metric, "sweeps": [{"name": n, "seeds": [{"final": v} for v in values]} for n in sweeps]}
  with open(os.path.join(path, "report.json"), "w") as f:
    json.dump(report, f)
  if epochs is not None:
    config = jaxflow.load_config(config_path("digits_mlp.py"), [f"train.epochs={epochs}", "seeds.init=3"])
    for sweep in sweeps:
      os.makedirs(os.path.join(path, sweep, "seed_000"))
      write_config(os.path.join(path, sweep, "seed_000"), config)


def test_compare_through_the_cli(tmp_path, capsys):
  a, b = str(tmp_path / "a"), str(tmp_path / "b")
  _fake_study(a, [0.95, 0.96, 0.955, 0.958, 0.962], epochs=30, sweeps=("init", "all"))
  _fake_study(b, [0.90, 0.91, 0.905, 0.908, 0.899], epochs=10, sweeps=("all",))
  assert cli.main(["jaxflow", "seeds", "compare", a, b]) == 0
  config_line, verdict, numbers = capsys.readouterr().out.splitlines()
  assert config_line.endswith(": train.epochs: 30 -> 10")  # the seeds' own pins are no difference
  assert verdict.startswith(f"{a} beats {b}") and "of sweep 'all' against" in verdict
  assert json.loads(numbers)["a_beats_b"] is True
  assert cli.main(["jaxflow", "seeds", "compare", a, str(tmp_path / "missing")]) == 2
  assert "report.json not found" in capsys.readouterr().err


def test_compare_says_which_condition_failed(tmp_path):
  a, b = str(tmp_path / "a"), str(tmp_path / "b")
  _fake_study(a, [0.95, 0.90, 0.97, 0.91])
  _fake_study(b, [0.94, 0.92, 0.93, 0.90])
  result = seeds_compare.compare_studies(a, b)
  assert result["verdict"].startswith(f"no difference shown between {a} and {b}: the 95% interval")
  assert "Welch's t-test does not reject" in result["verdict"] and result["config_differences"] is None


@pytest.mark.slow
def test_auto_does_not_compile_vmapped_convolutions_on_cpu():
  """A CNN's seeds as one vmapped program are a grouped convolution (~5x slower on XLA:CPU): auto times
  sequential alone and says why, instead of compiling a candidate that loses."""
  config = jaxflow.load_config(
    config_path("digits_cnn.py"), ["model.conv_features=(4,)", "model.widths=(8,)", "train.epochs=1"]
  )
  choice = mode_choice.choose_mode(config, 3, Compiled(), vary=("init",))
  assert choice["mode"] == "sequential" and set(choice["timings"]) == {"sequential"}
  assert "vmap not timed: vmapped convolutions are grouped convolutions" in choice["why"]
