"""The settings of quantization and compress-to-target, and their bounds.

Kept apart from the code that uses them so that the command line can build its flags (and
their one-line refusals) without loading torch or onnxruntime.
"""

from __future__ import annotations

MODES = ("auto", "dynamic", "static", "fp16")  # auto: static with a Conv2d, else dynamic
DEFAULT_CALIBRATION = 512  # training samples that calibrate static quantization
MAX_CALIBRATION = 50_000
DEFAULT_MAX_DROP = 1.0  # test accuracy points a quantized file may lose before it is refused
MAX_DROP_LIMIT = 100.0
REGRESSION_MAX_INCREASE = 0.10  # a 10% higher test MSE breaks a regression network
DEFAULT_FINETUNE_EPOCHS = 1
MAX_FINETUNE_EPOCHS = 100
DEFAULT_PROBES = 5  # pruned runs a compress-to-target search may make
MAX_PROBES = 11  # one per pruning amount of the sweep

__all__ = [
    "DEFAULT_CALIBRATION",
    "DEFAULT_FINETUNE_EPOCHS",
    "DEFAULT_MAX_DROP",
    "DEFAULT_PROBES",
    "MAX_CALIBRATION",
    "MAX_DROP_LIMIT",
    "MAX_FINETUNE_EPOCHS",
    "MAX_PROBES",
    "MODES",
    "REGRESSION_MAX_INCREASE",
]
