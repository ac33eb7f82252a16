"""A trained model leaves jaxflow: export it, load it anywhere jax runs, predict with it, serve it.

- `export`: a run (or every seed of a seeds study, as one ensemble) -> a `jax.export` program + model card.
- `artifact`: `load_model(DIR)`, which needs jax and numpy only (no flax, optax, orbax, or jaxflow.training).
- `inference`: the pure inference function (the preprocessing training applied, the model, the output).
- `card`: the model card (JSON and Markdown).
- `inputs` and `predict`: image files, folders, CSV rows and NPZ arrays in, one prediction per input out.
- `serve`: an HTTP JSON API that batches concurrent requests onto a few precompiled batch sizes.

This package imports only `artifact` when it is imported, so `from jaxflow.deploy import load_model` stays
within jax and numpy.
"""

from jaxflow.deploy.artifact import ArtifactError, Model, load_model

__all__ = ["ArtifactError", "Model", "load_model"]
