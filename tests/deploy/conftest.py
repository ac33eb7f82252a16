"""The deploy tests share the trained and exported digits runs of tests/conftest.py (`cnn_run`, `mlp_run`,
`cnn_model`, `mlp_model`): the profiler tests time the same exported model."""
