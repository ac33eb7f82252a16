"""Post-training precision: bf16 and int8 (calibrated, per-channel weights) variants of any jaxflow model.

Its own home because two consumers need it: the profiler measures each variant's speed and accuracy, and
`jaxflow export --precision` ships one. `variants` builds and evaluates the variants; `quantize` holds the
int8 scheme (calibration, quantized matmuls).
"""
