"""`jaxflow audit`: the configured dataset audited as training would see it, written as a report.

The splits are the config's `data.train_split` and `data.eval_split`, loaded the way training loads
them: `data.classes` / `data.train_examples`, then `data.adapt`, then (training split only) the
configured class skew and label noise, because those are part of the data the model is given. The
metadata features named in `data.metadata_features` (a CSV column, a tfds feature) are what the
sample-bias check associates with the label. `config.audit.*` sets the thresholds
(`jaxflow.auditing.AuditThresholds`). Writes report.json, report.md, plots/*.png and config.json;
a config that fails validation writes nothing.
"""

from __future__ import annotations

import dataclasses

import ml_collections
import numpy as np

from jaxflow import rng
from jaxflow.auditing import names as names_lib
from jaxflow.auditing.checks import audit
from jaxflow.auditing.report import write_report
from jaxflow.auditing.splits import AuditSplit, AuditThresholds
from jaxflow.config import ConfigError, to_dict
from jaxflow.data import registry
from jaxflow.data.problem import Problem, read_spec
from jaxflow.run.assemble import host_data, problem_of
from jaxflow.workdir import acquire_lock, write_config


def thresholds(config: ml_collections.ConfigDict) -> AuditThresholds:
  """`config.audit` (fields of AuditThresholds; absent ones keep their defaults)."""
  given = to_dict(config.audit) if "audit" in config else {}
  fields = {f.name: f for f in dataclasses.fields(AuditThresholds)}
  unknown = sorted(set(given) - set(fields))
  if unknown:
    raise ConfigError(f"config.audit.{unknown[0]} is not an audit threshold; allowed: {', '.join(fields)}")
  values = {}
  for name, value in given.items():
    default = getattr(AuditThresholds(), name)
    if (
      isinstance(value, bool)
      or not isinstance(value, (int, float))
      or (isinstance(default, int) and not isinstance(value, int))
      or value < 0
    ):
      raise ConfigError(
        f"config.audit.{name}={value!r} must be a non-negative {type(default).__name__} (default {default})"
      )
    values[name] = value
  return AuditThresholds(**values)


def audited_splits(config: ml_collections.ConfigDict, problem: Problem) -> dict[str, AuditSplit]:
  """{split name: AuditSplit} of the train and eval splits, as the training loop would see them. The audit
  reads the dataset's classes: a multiclass problem's targets are those classes (label noise included); a
  binary problem's are not, so its audit reads the dataset labels, without the noise drawn on the targets."""
  splits, _ = _audited_splits_and_names(config, problem)
  return splits


def _audited_splits_and_names(config, problem: Problem) -> tuple[dict[str, AuditSplit], dict[str, list[str]] | None]:
  """The audited splits, and each example's name when the dataset keeps one (`names.provenance_feature`):
  read along as metadata, then kept out of the bias checks (a file name is no attribute of the class)."""
  d = config.data
  feature = names_lib.provenance_feature(d.name)
  read = config
  if feature is not None and feature not in d.metadata_features:
    read = config.copy_and_resolve_references()
    read.data.metadata_features = (*d.metadata_features, feature)
  prepared = host_data(read, problem, rng.streams(config))
  train, evaluation = prepared.train, prepared.eval
  labels = prepared.train_targets if problem.kind == "multiclass" else train.labels
  named = {}
  if feature is not None:
    named = {
      s: names_lib.example_names(feature, split.metadata[feature])
      for s, split in ((d.train_split, train), (d.eval_split, evaluation))
    }

  def kept(metadata):
    return {k: v for k, v in metadata.items() if k in d.metadata_features}

  splits = {
    d.train_split: AuditSplit(np.asarray(train.inputs), np.asarray(labels), kept(train.metadata)),
    d.eval_split: AuditSplit(np.asarray(evaluation.inputs), np.asarray(evaluation.labels), kept(evaluation.metadata)),
  }
  return splits, named or None


def run_audit(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Audits the configured dataset into `workdir`; returns the report (also in report.json)."""
  d = config.data
  if not registry.dataset_kind(d.name).stored:
    raise ConfigError(
      f"config.data.name={d.name!r}: the audit reads labelled array datasets (tfds, digits, folder:/csv:/npz:), "
      "not generated or graph data"
    )
  limits = thresholds(config)
  problem = problem_of(config)
  if problem.kind == "regression":
    raise ConfigError(
      "config.problem.kind='regression': the audit needs class labels (problem.kind multiclass or binary)"
    )
  if d.train_split == d.eval_split:
    raise ConfigError(
      f"config.data.eval_split={d.eval_split!r} is the training split; the audit compares two different splits"
    )
  with acquire_lock(workdir, command="jaxflow audit"):
    splits, example_names = _audited_splits_and_names(config, problem)
    num_classes = problem.adaptation.num_classes(problem.dataset_classes)
    spec_names = _class_names(config, problem, num_classes)
    report = audit(
      splits,
      num_classes=num_classes,
      class_names=spec_names,
      train_split=d.train_split,
      eval_split=d.eval_split,
      thresholds=limits,
    )
    if example_names is not None:
      names_lib.annotate(report, example_names)
    report["dataset"] = {
      "name": d.name,
      "input_feature": d.input_feature,
      "label_feature": d.label_feature,
      "metadata_features": list(d.metadata_features),
      "adapt": to_dict(d.adapt),
      "classes": d.classes,
      "class_counts": d.class_counts,
      "imbalance_ratio": d.imbalance_ratio,
      "label_noise": to_dict(d.label_noise),
    }
    write_config(workdir, config)
    write_report(report, workdir)
    return report


def _class_names(config, problem: Problem, num_classes: int) -> list[str] | None:
  """The dataset's class names when the labels are still the dataset's own (no relabel)."""
  if problem.adaptation.relabel is not None:
    return None
  names = read_spec(config).class_names
  return list(names) if names and len(names) == num_classes else None
