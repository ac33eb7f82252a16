"""Hyperparameter tuning (`jaxflow tune`): search spaces, the GP and its acquisition, what to try next,
pruning of poor trials, the study loop and its report.

- `space` (parameters and the Space), `space_checks` (a space against a config), `space_file` (loading a
  get_space() file), `overrides` (a trial's values assigned to a config);
- `gp`, `acquisition`, `suggest`: grid, random, quasi-random and Bayesian proposals;
- `pruning`: the median rule and ASHA over rungs of separate runs (not training's early stopping);
- `trials` (a trial's record and config), `study_loop` (proposing, training and pruning rounds of
  trials), `study` (`run_tune`: arguments, study.json, resuming), `report`, `report_plots`, `best_config`;
- `optimize` (`jaxflow.optimize`): the same suggester on a plain Python function, resumable from a JSON file.

The package is `tuning` and the verb's function `jaxflow.tune(config, workdir, ...)`: a package named
`tune` would replace that function as an attribute of `jaxflow` once imported (as `training` and `train`).
"""
