"""`workbench export RUN OUT.onnx`: export a run to ONNX, verified with onnxruntime.

With `--quantize dynamic|static|fp16|auto` the file written is the quantized network, verified
on the test split against the float one (refused past `--max-drop` points). Ctrl-C or SIGTERM
stops it between steps (exit 130/143): nothing is written, its work folder is removed.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from workbench.commands.common import (
    CommandError,
    Exit,
    add_run_arg,
    add_runs_dir,
    bounded,
    find_run,
    print_result,
)
from workbench.commands.signals import SignalStop
from workbench.core.workspace import Workspace
from workbench.spec import Bound


def add_parser(sub: Any) -> None:
    p = sub.add_parser("export", help="export a run to ONNX (+ safetensors and a PyTorch script)")
    add_run_arg(p, "the run to export")
    add_runs_dir(p)
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
    p.add_argument("--dense", action="store_true",
                   help="store pruned weights dense (for runtimes that do not read sparse "
                   "constants; the file is larger)")
    add_quantize_arguments(p)


def add_quantize_arguments(p: Any, default: str | None = None) -> None:
    """The quantization flags that `export` and `compress` share."""
    from workbench.core.tools.compress_settings import (
        DEFAULT_CALIBRATION,
        DEFAULT_MAX_DROP,
        MAX_CALIBRATION,
        MAX_DROP_LIMIT,
        MODES,
    )

    p.add_argument("--quantize", choices=MODES, default=default, metavar="MODE",
                   help="dynamic (int8 weights; Linear-heavy nets), static (int8, calibrated "
                   "on training samples; conv nets), fp16, or auto (static with a Conv2d, "
                   "else dynamic)" + (f"; default {default}" if default else
                                      "; the quantized .onnx is the only file written"))
    p.add_argument("--calibration", type=bounded(Bound(1, MAX_CALIBRATION, integer=True)),
                   default=DEFAULT_CALIBRATION, metavar="N",
                   help=f"training samples that calibrate static quantization "
                   f"(default {DEFAULT_CALIBRATION})")
    p.add_argument("--per-channel", choices=("auto", "yes", "no"), default="auto",
                   help="int8 weights per output channel (auto: try both, keep the better on "
                   "the validation split)")
    if default is None:
        p.add_argument("--max-drop", type=bounded(Bound(0, MAX_DROP_LIMIT)), default=None,
                       metavar="POINTS", help="refuse a quantized file that loses more test "
                       f"accuracy points than this (default {DEFAULT_MAX_DROP:g})")


def quantize_config(args: argparse.Namespace, mode: str) -> Any:
    from workbench.core.tools.compress_settings import DEFAULT_MAX_DROP
    from workbench.core.tools.quantize import QuantizeConfig

    per_channel = {"auto": None, "yes": True, "no": False}[args.per_channel]
    max_drop = args.max_drop if args.command == "export" and args.max_drop is not None \
        else DEFAULT_MAX_DROP
    return QuantizeConfig(mode=mode, calibration=args.calibration, per_channel=per_channel,
                          max_drop=max_drop)


NOTHING_WRITTEN = "nothing was written; export again to make it"


def run(args: argparse.Namespace) -> int:
    args.run_dir = str(find_run(args))  # a name, a prefix, latest or a path
    from workbench.core.cancel import Cancelled
    from workbench.core.tools.export import DEFAULT_OPSET, ExportError, export_run

    workspace = Workspace()
    with SignalStop() as stop:
        try:
            if args.quantize is not None:
                return _run_quantized(args, workspace, stop)
            result = export_run(args.run_dir, args.out,
                                opset=DEFAULT_OPSET if args.opset is None else args.opset,
                                normalize_in_graph=args.raw_input,
                                weights=not args.no_weights, script=not args.no_script,
                                overwrite=args.force, source=workspace,
                                sparse=not args.dense, cancel=stop.event)
        except Cancelled:
            return stop.stopped(NOTHING_WRITTEN)
        except ExportError as exc:
            if stop.signal is not None:  # a load cut short by the stop
                return stop.stopped(NOTHING_WRITTEN)
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
    return Exit.OK


def _run_quantized(args: argparse.Namespace, workspace: Workspace, stop: SignalStop) -> int:
    from workbench.core.tools.export import DEFAULT_OPSET
    from workbench.core.tools.quantize import quantize_run

    result = quantize_run(args.run_dir, args.out, quantize_config(args, args.quantize),
                          opset=DEFAULT_OPSET if args.opset is None else args.opset,
                          normalize_in_graph=args.raw_input, source=workspace,
                          cancel=stop.event)
    for note in result.notes:
        sys.stderr.write(f"note: {note}\n")
    sys.stderr.write(variant_table([("float32", result.fp32), (result.kind, result.quantized)]))
    before, after = result.fp32, result.quantized
    change = (f"test accuracy {before.test_accuracy:.2%} -> {after.test_accuracy:.2%}"
              if result.drop is not None else
              f"test MSE {before.test_loss:.4g} -> {after.test_loss:.4g}")
    sys.stderr.write(f"{result.kind}: {result.ratio:.2f}x smaller, {change}; wrote "
                     f"{result.path}\n")
    print_result(result.to_dict())
    return Exit.OK


def variant_table(rows: list[tuple[str, Any]]) -> str:
    """Measured variants as a plain table for stderr."""
    lines = [f"{'variant':36s} {'bytes':>10s} {'b1 ms':>8s} {'b256 ms':>8s} {'test acc':>9s} "
             f"{'agree':>7s}"]
    for name, m in rows:
        acc = f"{m.test_accuracy:.2%}" if m.test_accuracy is not None else f"{m.test_loss:.4g}"
        agree = f"{m.agreement:.1%}" if m.agreement is not None else "—"
        lines.append(f"{name[:36]:36s} {m.bytes:>10,} {m.latency_ms:>8.3f} "
                     f"{m.latency_ms_256:>8.2f} {acc:>9s} {agree:>7s}")
    return "\n".join(lines) + "\n"
