"""Datasets for jaxflow: tfds builders for the data jaxflow ships, and whole-split numpy loading.

Importing this package imports neither TensorFlow nor tensorflow_datasets: `loading` imports tfds only
when a dataset is actually asked for, and the `digits` builder module only when `digits` is.
"""

from jaxflow.data.loading import (
  DEFAULT_DATA_DIR_ENV,
  SHIPPED_DATASETS,
  DatasetError,
  FeatureSpec,
  Split,
  dataset_spec,
  load_split,
  resolve_data_dir,
)
from jaxflow.data.subsets import select_examples

__all__ = [
  "DEFAULT_DATA_DIR_ENV",
  "SHIPPED_DATASETS",
  "DatasetError",
  "FeatureSpec",
  "Split",
  "dataset_spec",
  "load_split",
  "resolve_data_dir",
  "select_examples",
]
