"""`workbench export RUN_DIR OUT.onnx`: export a run to ONNX, verified with onnxruntime."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from workbench.commands.common import CommandError, print_result
from workbench.core.workspace import Workspace


def add_parser(sub: Any) -> None:
    p = sub.add_parser("export", help="export a run to ONNX (+ safetensors and a PyTorch script)")
    p.add_argument("run_dir", metavar="RUN_DIR", help="the run's folder")
    p.add_argument("out", metavar="OUT.onnx", help="the ONNX file to write")
    p.add_argument("--opset", type=int, default=None,
                   help="ONNX opset, 13..21 (default: 18, the best-tested one); the result "
                        "says the opset the file really has")
    p.add_argument("--raw-input", action="store_true",
                   help="put the normalization in the graph: feed raw pixels 0..255 as float32")
    p.add_argument("--no-weights", action="store_true", help="skip the .safetensors file")
    p.add_argument("--no-script", action="store_true", help="skip the PyTorch .py script")
    p.add_argument("--force", action="store_true",
                   help="overwrite the .safetensors and .py beside OUT.onnx when they exist")


def run(args: argparse.Namespace) -> int:
    from workbench.core.tools.export import DEFAULT_OPSET, ExportError, export_run

    workspace = Workspace()
    _quiet_exporter()
    try:
        result = export_run(args.run_dir, args.out,
                            opset=DEFAULT_OPSET if args.opset is None else args.opset,
                            normalize_in_graph=args.raw_input, weights=not args.no_weights,
                            script=not args.no_script, overwrite=args.force,
                            source=workspace)
    except ExportError as exc:
        raise CommandError(str(exc)) from exc
    if result.note:
        sys.stderr.write(f"note: {result.note}\n")
    for c in result.checks:
        agree = f", agreement {c.agreement:.2%}" if c.agreement is not None else ""
        sys.stderr.write(f"onnxruntime vs PyTorch, batch {c.batch} ({c.samples} test samples): "
                         f"max abs diff {c.max_abs_diff:.3g}{agree}\n")
    for path in result.files:
        sys.stderr.write(f"wrote {path}\n")
    d = result.to_dict()
    d.pop("checks")
    print_result(d)
    return 0


def _quiet_exporter() -> None:
    """torch.onnx's warnings and log lines are noise on a terminal. The command runs on the
    main thread with no other thread about, so process-wide settings are safe here (the core's
    export touches none: the app exports beside other threads)."""
    import logging
    import warnings

    warnings.simplefilter("ignore")
    for name in ("torch.onnx", "onnxscript", "torch._export", "torch.export"):
        logging.getLogger(name).setLevel(logging.ERROR)
