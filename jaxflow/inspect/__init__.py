"""Looking inside trained models: saliency (with sanity checks), activation maps, kernel pictures and
per-layer statistics. `run_explain` (jaxflow/inspect/explain.py) is what `jaxflow explain` calls."""
