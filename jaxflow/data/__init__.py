"""Datasets for jaxflow: tfds builders for the data jaxflow ships, a user's own data as tfds datasets
('folder:PATH', 'csv:PATH', 'npz:PATH'; see `custom`), and whole-split numpy loading.

Importing this package imports neither TensorFlow nor tensorflow_datasets: `loading` and `custom`
import tfds only when a dataset is actually asked for, and `digits` defines its builder only when
`digits` is.
"""

from jaxflow.data.custom import KINDS as CUSTOM_KINDS
from jaxflow.data.custom import prepared_dir as custom_prepared_dir
from jaxflow.data.loading import SHIPPED_DATASETS, FeatureSpec, Split, dataset_spec, load_split
from jaxflow.data.store import DEFAULT_DATA_DIR_ENV, DatasetError, resolve_data_dir
from jaxflow.data.subsets import select_examples

__all__ = [
  "CUSTOM_KINDS",
  "DEFAULT_DATA_DIR_ENV",
  "SHIPPED_DATASETS",
  "DatasetError",
  "FeatureSpec",
  "Split",
  "custom_prepared_dir",
  "dataset_spec",
  "load_split",
  "resolve_data_dir",
  "select_examples",
]
