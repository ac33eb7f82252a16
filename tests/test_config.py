"""jaxflow.config: loading with overrides and variants, one-line errors, hashing, checking helpers."""

from __future__ import annotations

import hashlib
import json
import os
import sys

import ml_collections
import pytest
from absl import flags
from ml_collections import config_flags

from configs import base, digits_mlp
from jaxflow import config as config_lib
from jaxflow.config import (
  ConfigError,
  config_hash,
  config_hashes,
  import_file,
  importable_config_dir,
  load_config,
  parse_config_flags,
  require_choice,
  require_positive,
  require_type,
)
from jaxflow.tuning import space_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def in_repo_root(monkeypatch):
  monkeypatch.chdir(ROOT)


def assert_one_line(error: pytest.ExceptionInfo, *fragments: str) -> str:
  message = str(error.value)
  assert "\n" not in message
  assert message.strip() == message and message
  for fragment in fragments:
    assert fragment in message, (fragment, message)
  return message


def test_overrides_apply_with_the_right_types(in_repo_root):
  config = load_config("configs/digits_mlp.py", ["optim.lr=0.01", "train.epochs=3"])
  assert config.optim.lr == 0.01 and type(config.optim.lr) is float
  assert config.train.epochs == 3 and type(config.train.epochs) is int
  # Everything else is the file's own value.
  assert config.train.batch_size == 128
  assert config.model.widths == (256, 256)
  assert config.optim.name == "adam"


def test_overrides_of_tuples_placeholders_bools_and_prefixed_form(in_repo_root):
  config = load_config(
    "configs/digits_mlp.py",
    ["model.widths=(32,16)", "seeds.init=7", "optim.clip_norm=1.5", "train.overwrite=True", "--config.optim.name=sgd"],
  )
  assert config.model.widths == (32, 16)
  assert config.seeds.init == 7 and type(config.seeds.init) is int
  assert config.seeds.data is None
  assert config.optim.clip_norm == 1.5
  assert config.train.overwrite is True
  assert config.optim.name == "sgd"


def test_none_clears_a_nullable_field_and_only_a_nullable_one(in_repo_root):
  """`=None` of a placeholder field is None (config_flags alone refused it for a float or int placeholder and
  made a str one the string 'None', so `init_from=None` named a checkpoint folder 'None'); a field the file
  gives a plain value keeps refusing it with one line."""
  config = load_config(
    "configs/digits_mlp.py",
    ["checkpoint.every_seconds=None", "seeds.data=None", "init_from=None", "--config.compilation_cache=None"],
  )
  assert digits_mlp.get_config().checkpoint.every_seconds == 60.0  # the file's value, cleared
  assert config.checkpoint.every_seconds is None and config.seeds.data is None
  assert config.init_from is None and config.compilation_cache is None
  spaced = ["jaxflow", "--config=configs/digits_mlp.py", "--config.init_from", "None", "--config.seeds.data", "None"]
  flag_values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", flag_values=flag_values, lock_config=True, sys_argv=spaced)
  assert parse_config_flags(flag_values, spaced) == ["jaxflow"]  # the CLI's parse, absl's space-separated form
  assert flag_values.config.init_from is None and flag_values.config.seeds.data is None
  config.checkpoint.every_seconds = 30.0  # still the float field it was
  assert config.checkpoint.every_seconds == 30.0
  assert load_config("configs/digits_mlp.py", ["init_from=runs/None"]).init_from == "runs/None"
  with pytest.raises(ConfigError) as error:
    load_config("configs/digits_mlp.py", ["train.epochs=None"])
  assert_one_line(error, "train.epochs", "None")


def test_no_overrides_gives_the_file_config(in_repo_root):
  config = load_config("configs/digits_mlp.py")
  assert config.to_dict() == digits_mlp.get_config().to_dict()
  assert config.train.epochs == 30


@pytest.mark.parametrize(
  "override, fragment", [("optim.lr=abc", "abc"), ("train.epochs=1.5", "1.5"), ("train.overwrite=maybe", "maybe")]
)
def test_wrong_type_is_a_one_line_config_error(in_repo_root, override, fragment):
  with pytest.raises(ConfigError) as error:
    load_config("configs/digits_mlp.py", [override])
  assert_one_line(error, override.split("=")[0], fragment)
  assert issubclass(ConfigError, ValueError)


def test_unknown_field_is_a_one_line_config_error(in_repo_root):
  with pytest.raises(ConfigError) as error:
    load_config("configs/digits_mlp.py", ["optim.learning_rate=0.1"])
  assert_one_line(error, "learning_rate")


def test_missing_file_is_a_config_error(tmp_path):
  with pytest.raises(ConfigError) as error:
    load_config(str(tmp_path / "nope.py"), ["train.epochs=3"])
  assert_one_line(error, "nope.py")


def test_variant(in_repo_root):
  test = load_config("configs/digits_mlp.py:test")
  assert test.train.epochs == 2
  assert test.train.log_every == 5
  assert load_config("configs/digits_mlp.py:test", ["train.epochs=4"]).train.epochs == 4


def test_absolute_path_from_another_directory_leaves_sys_path_alone(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  before = list(sys.path)
  config = load_config(os.path.join(ROOT, "configs", "digits_cnn.py"), ["train.epochs=1"])
  assert config.model.name == "cnn" and config.train.epochs == 1
  assert sys.path == before


def test_config_hash_stable_and_sensitive(in_repo_root):
  a = load_config("configs/digits_mlp.py")
  h = config_hash(a)
  assert len(h) == 64 and int(h, 16) >= 0
  assert config_hash(load_config("configs/digits_mlp.py")) == h
  assert config_hash(digits_mlp.get_config()) == h
  assert config_hash(load_config("configs/digits_mlp.py", ["optim.lr=0.01"])) != h
  assert config_hash(load_config("configs/digits_mlp.py", ["seeds.init=3"])) != h
  assert config_hash(load_config("configs/digits_mlp.py", ["model.widths=(256,)"])) != h
  assert config_hash(load_config("configs/digits_mlp.py:test")) != h


def test_config_hash_ignores_overwrite_without_mutating(in_repo_root):
  a = load_config("configs/digits_mlp.py")
  b = load_config("configs/digits_mlp.py", ["train.overwrite=True"])
  assert config_hash(a) == config_hash(b)
  assert b.train.overwrite is True  # hashing did not remove the field from the config itself
  assert config_lib.to_dict(b)["train"]["overwrite"] is True


def test_checkpoint_cadences_are_resume_neutral_and_the_earlier_hash_is_still_known(in_repo_root):
  """checkpoint.* decides when checkpoints are written, not what is trained: it is out of config_hash. Records
  written before (config.json, a study's base config, a trial) carry the hash with it: config_hashes' second,
  recomputed here from its definition (sha256 of the canonical JSON without the fields that were neutral then)."""
  a = load_config("configs/digits_mlp.py")
  cadence = ["checkpoint.every_epochs=5", "checkpoint.every_seconds=30.0", "checkpoint.keep=1"]
  b = load_config("configs/digits_mlp.py", cadence)
  assert config_hash(a) == config_hash(b) and config_hashes(a)[0] == config_hash(a)
  data = config_lib.to_dict(a)
  neutral_then = ("overwrite", "stop_on_divergence", "dispatch_ahead")
  data["train"] = {k: v for k, v in data["train"].items() if k not in neutral_then}
  for section in ("audit", "parallel", "compilation_cache"):
    data.pop(section, None)
  canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
  assert config_hashes(a)[1] == hashlib.sha256(canonical.encode()).hexdigest() != config_hash(a)
  assert config_hashes(b)[1] != config_hashes(a)[1]  # then, the cadence counted
  c = load_config("configs/digits_mlp.py", ["optim.lr=0.01"])
  assert config_hashes(c)[0] != config_hashes(a)[0] and config_hashes(c)[1] != config_hashes(a)[1]


def test_to_dict_is_plain_json():
  data = config_lib.to_dict(base.get_config())
  assert data["model"]["widths"] == [256, 256]
  assert data["seeds"]["init"] is None
  assert data["optim"]["lr"] == 1e-3


def test_require_choice():
  config = base.get_config()
  assert require_choice(config, "optim.name", ("adam", "sgd")) == "adam"
  config.optim.name = "adamax"
  with pytest.raises(ConfigError) as error:
    require_choice(config, "optim.name", ("sgd", "adam"))
  assert_one_line(error, "config.optim.name", "'adamax'", "adam, sgd")


def test_require_type():
  config = base.get_config()
  assert require_type(config, "train.batch_size", int) == 128
  assert require_type(config, "optim.lr", (int, float)) == 1e-3
  # A config file may build a field with the wrong type (assignment to an existing field is type-checked).
  config = ml_collections.ConfigDict({"train": {"batch_size": 1.5}})
  with pytest.raises(ConfigError) as error:
    require_type(config, "train.batch_size", int)
  assert_one_line(error, "config.train.batch_size", "float", "int")


def test_require_type_rejects_bool_for_int():
  config = base.get_config()
  config.train.batch_size = True
  with pytest.raises(ConfigError) as error:
    require_type(config, "train.batch_size", int)
  assert_one_line(error, "config.train.batch_size", "True")
  with pytest.raises(ConfigError):
    require_type(config, "train.batch_size", (int, float))
  # ...but a bool field accepts a bool.
  assert require_type(config, "train.overwrite", bool) is False


def test_require_positive():
  config = base.get_config()
  assert require_positive(config, "train.epochs") == 10
  config.train.epochs = 0
  with pytest.raises(ConfigError) as error:
    require_positive(config, "train.epochs")
  assert_one_line(error, "config.train.epochs", "> 0")
  assert require_positive(config, "train.epochs", allow_zero=True) == 0
  config.train.epochs = -1
  with pytest.raises(ConfigError) as error:
    require_positive(config, "train.epochs", allow_zero=True)
  assert_one_line(error, "config.train.epochs", ">= 0")
  with pytest.raises(ConfigError) as error:  # an int field does not take a float
    require_positive(ml_collections.ConfigDict({"train": {"epochs": 2.0}}), "train.epochs")
  assert_one_line(error, "config.train.epochs", "float")
  # A float field accepts ints and floats, and rejects non-positive values and bools.
  assert require_positive(config, "optim.lr", float) == 1e-3
  config.optim.lr = 0.0
  with pytest.raises(ConfigError):
    require_positive(config, "optim.lr", float)
  with pytest.raises(ConfigError):  # (assigning True to the float field above would store 1.0)
    require_positive(ml_collections.ConfigDict({"optim": {"lr": True}}), "optim.lr", float)
  assert require_positive(ml_collections.ConfigDict({"optim": {"lr": 2}}), "optim.lr", float) == 2


@pytest.mark.parametrize(
  "value, fragment", [("nan", "must be > 0"), ("inf", "must be finite"), ("-inf", "must be > 0")]
)
def test_require_positive_rejects_non_finite(in_repo_root, value, fragment):
  """`--config.optim.lr=nan` parses as a float; a positivity check written as `value < 0` let it through."""
  config = load_config("configs/digits_mlp.py", [f"optim.lr={value}", f"optim.weight_decay={value}"])
  with pytest.raises(ConfigError) as error:
    require_positive(config, "optim.lr", float)
  assert_one_line(error, "config.optim.lr=", fragment)
  with pytest.raises(ConfigError):
    require_positive(config, "optim.weight_decay", float, allow_zero=True)


# -- the config file itself: one line naming the file and its real problem -------------------------------

CONFIG_FILE_PROBLEMS = {
  "returns_dict": (
    "def get_config():\n  return {'a': 1}\n",
    "get_config() returned a dict, not an ml_collections.ConfigDict",
  ),
  "returns_none": (
    "def get_config():\n  config = 1\n",
    "get_config() returned None (a missing return statement?), not an ml_collections.ConfigDict",
  ),
  "no_get_config": ("X = 1\n", "has no get_config(); define one that returns an ml_collections.ConfigDict"),
  "raises": (
    "def get_config():\n  raise RuntimeError('boom\\nsecond line')\n",
    "get_config() raised RuntimeError: boom second line",
  ),
  "syntax_error": ("def get_config(:\n", "could not be loaded: SyntaxError: "),
  "import_error": ("import no_such_module_here\n", "could not be loaded: ModuleNotFoundError: "),
}


def write_config_file(folder, name: str, text: str) -> str:
  path = folder / "configs" / f"{name}.py"
  path.parent.mkdir(exist_ok=True)
  path.write_text(text)
  return str(path)


@pytest.mark.parametrize("name", sorted(CONFIG_FILE_PROBLEMS))
def test_a_config_file_problem_names_the_file_and_the_problem(tmp_path, name):
  text, says = CONFIG_FILE_PROBLEMS[name]
  path = write_config_file(tmp_path, name, text)
  for overrides in ([], ["optim.lr=0.1"]):  # with overrides too: the file's problem, never "the overrides"
    with pytest.raises(ConfigError) as error:
      load_config(path, overrides)
    message = assert_one_line(error, f"config file {path!r}", says)
    assert "overrides" not in message


MINIMAL = (
  "import ml_collections\n\n{variants}\n\ndef get_config(variant=''):\n"
  "  return ml_collections.ConfigDict({{'train': {{'epochs': 2 if variant == 'short' else 10}}}})\n"
)


def test_a_variant_must_be_declared_by_the_file(tmp_path):
  declared = write_config_file(tmp_path, "declared", MINIMAL.format(variants="VARIANTS = ('short',)"))
  assert load_config(declared).train.epochs == 10
  assert load_config(declared + ":short").train.epochs == 2
  assert load_config(declared + ":").train.epochs == 10  # an empty variant is the default
  with pytest.raises(ConfigError) as error:
    load_config(declared + ":shrt")
  assert_one_line(error, f"config file {declared!r} has no variant 'shrt'; allowed: 'short' (or none")
  undeclared = write_config_file(tmp_path, "undeclared", MINIMAL.format(variants=""))
  assert load_config(undeclared).train.epochs == 10
  with pytest.raises(ConfigError) as error:  # it would take 'short', but does not say so: refused
    load_config(undeclared + ":short")
  assert_one_line(error, f"config file {undeclared!r} takes no variant (it declares no VARIANTS); drop ':short'")
  bad = write_config_file(tmp_path, "bad", MINIMAL.format(variants="VARIANTS = 'short'"))
  with pytest.raises(ConfigError) as error:
    load_config(bad)
  assert_one_line(error, "VARIANTS='short' must be a tuple of non-empty strings")


def shipped_config_files() -> list[str]:
  folder = os.path.join(ROOT, "configs")
  return sorted(f for f in os.listdir(folder) if f.endswith(".py") and f != "__init__.py")


@pytest.mark.parametrize("name", shipped_config_files())
def test_every_shipped_config_declares_its_variants(in_repo_root, name):
  """Every variant a shipped config declares loads and changes the config; any other is refused."""
  path = f"configs/{name}"
  with importable_config_dir(path):
    declared = getattr(import_file(path, path), "VARIANTS", ())
  default = config_hash(load_config(path))
  for variant in declared:
    assert config_hash(load_config(f"{path}:{variant}")) != default, (path, variant)
  with pytest.raises(ConfigError) as error:
    load_config(f"{path}:no_such_variant")
  assert_one_line(error, f"config file {path!r}", "no_such_variant")


def test_every_shipped_space_declares_its_variants(in_repo_root):
  for name in sorted(os.listdir(os.path.join(ROOT, "configs", "spaces"))):
    if not name.endswith(".py"):
      continue
    path = f"configs/spaces/{name}"
    full = space_file.load_space(path)
    for variant in import_file(path, path).VARIANTS:
      assert space_file.load_space(f"{path}:{variant}").describe() != full.describe()
    with pytest.raises(ConfigError) as error:
      space_file.load_space(f"{path}:no_such_variant")
    assert_one_line(error, f"--space={path!r} has no variant 'no_such_variant'; allowed: ")


# -- overrides: each field once, and a field the config has ----------------------------------------------


@pytest.mark.parametrize(
  "overrides, says",
  [
    (
      ["model.widths=(32,)", "model.widths=(64,)"],  # config_flags would train (32, 64)
      "config.model.widths is given twice (--config.model.widths=(32,) --config.model.widths=(64,)); "
      "give each field once",
    ),
    (["optim.lr=0.1", "--config.optim.lr=0.2"], "config.optim.lr is given twice"),  # config_flags: the last wins
    (["train.overwrite=True", "train.epochs=3", "train.overwrite=False"], "config.train.overwrite is given twice"),
    (["seeds.init=1", "seeds.init=1", "seeds.init=2"], "config.seeds.init is given 3 times"),
  ],
)
def test_a_field_given_twice_is_refused(in_repo_root, overrides, says):
  with pytest.raises(ConfigError) as error:
    load_config("configs/digits_mlp.py", overrides)
  assert_one_line(error, says)


@pytest.mark.parametrize(
  "override, says",
  [
    ("optim.lrr=0.1", "config.optim.lrr is not a config field; did you mean optim.lr?"),
    ("optim.learning_rate=0.1", "config.optim.learning_rate is not a config field; config.optim has: clip_norm, "),
    ("nope.x=1", "config.nope.x is not a config field; the config has: audit, checkpoint, "),
    ("trian.epochs=3", "config.trian.epochs is not a config field; did you mean train.epochs?"),
    ("seed.init=3", "config.seed.init is not a config field; did you mean seeds.init?"),
  ],
)
def test_an_unknown_field_is_one_clean_line_with_close_matches(in_repo_root, override, says):
  with pytest.raises(ConfigError) as error:
    load_config("configs/digits_mlp.py", [override])
  message = assert_one_line(error, says)
  assert "\\n" not in message and "Did you mean" not in message  # no repr of ml_collections' KeyError
