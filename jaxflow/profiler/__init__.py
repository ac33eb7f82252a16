"""`jaxflow profile`: how fast is this model on this hardware, why, and what would make it faster.

One module per job: `timing` (the one measurement protocol and a timer that refuses unsynchronized
work), `peaks` (each device's measured matmul FLOP/s and copy bandwidth), `hlo` (fusion and op counts of
the optimized HLO, cost and memory analysis), `roofline`, `workload` (the config's model, trained
weights and data as batches), the precision variants (`jaxflow.precision`: f32, bf16, int8),
`inference` (unfused vs jit vs AOT per batch size), `train_speed` (step time, input-wait share),
`multistream` (asynchronous dispatch, two models at once, GPU autotune levels), `trace`
(jax.profiler), `report` and `plots` (report.json / report.md / PNGs; `report_device` draws one
device's tables, `report_format` is how every number reads), `compare`, and `run` (the verb).
"""
