"""`workbench`: opens the app; `workbench train|runs|...` work headless.

Each subcommand lives in `workbench/commands/<name>.py` with `add_parser` and `run`.
A bad spec or argument exits with status 2 and one line naming the problem; every exit status
is one of `commands.common.Exit`. Other libraries' warnings and log lines reach stderr only
with `--verbose`; a reader that closes the output (`workbench runs | head -1`) ends the
command quietly.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from workbench import __version__
from workbench.commands.common import Exit

# Modules in workbench/commands; a command's name is its module's with "-" for "_".
COMMANDS = ("train", "runs", "resume", "compare", "prune", "export", "compress", "lr_find",
            "fork", "search", "studies", "cluster", "inspect", "report")


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(Exit.BAD_INPUT)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="workbench",
        description="Train neural networks by clicking instead of coding. "
        "With no command, opens the app.",
    )
    parser.add_argument("--version", action="version", version=_version_text())
    parser.add_argument("--verbose", action="store_true",
                        help="also write the log (normally only in the per-user log file) to "
                             "stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for name in COMMANDS:
        importlib.import_module(f"workbench.commands.{name}").add_parser(sub)
    return parser


def _version_text() -> str:
    return f"workbench {__version__}"


def fail(message: str) -> int:
    """Print one line naming the problem; the exit status for bad input."""
    sys.stderr.write(f"workbench: error: {message}\n")
    return Exit.BAD_INPUT


def _internal(argv: list[str]) -> int | None:
    """`workbench _torchrun ...` and `workbench _rank ...`: how the packaged app, which has no
    `python -m`, runs torchrun and its ranks (see core.training.distributed.launch_command).
    None when argv is an ordinary command line."""
    if not argv or argv[0] not in ("_torchrun", "_rank"):
        return None
    if argv[0] == "_rank":
        from workbench.commands.rank import main as rank_main

        return rank_main(argv[1:])
    from workbench.commands.agent import main as agent_main  # torchrun, recording each rank

    return agent_main(argv[1:])


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        _drop_output()
        return Exit.SIGPIPE


def _main(argv: Sequence[str] | None) -> int:
    internal = _internal(list(sys.argv[1:] if argv is None else argv))
    if internal is not None:
        return internal
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit:
        sys.stdout.flush()  # --help and --version: a closed pipe is caught in main
        raise
    from workbench import logs

    logs.configure(verbose=args.verbose)
    if args.command is None:
        return _open_app()
    if not args.verbose:
        logs.quiet_other_libraries()
    from workbench.commands.common import CommandError
    from workbench.core.cancel import Cancelled

    module = importlib.import_module(f"workbench.commands.{args.command.replace('-', '_')}")
    try:
        code = int(module.run(args))
        sys.stdout.flush()  # here, where a closed pipe is caught, not at the interpreter's exit
        return code
    except CommandError as exc:
        return fail(str(exc))
    except Cancelled as exc:  # a command that stopped on request without saying so itself
        sys.stderr.write(f"workbench: stopped: {exc}\n")
        return Exit.SIGINT
    except KeyboardInterrupt as exc:
        _quietly(lambda: sys.stderr.write("\nworkbench: stopped at once\n"))
        return int(getattr(exc, "code", Exit.SIGINT))


def _quietly(write: Callable[[], object]) -> None:
    with contextlib.suppress(OSError):
        write()


def _drop_output() -> None:
    """The reader of the output went away: send what is left of it, and the interpreter's
    last flush, nowhere instead of into a BrokenPipeError."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    with contextlib.suppress(OSError, ValueError):
        os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _open_app() -> int:
    try:
        from workbench.gui.app import main as gui_main
    except ImportError as exc:
        build_parser().print_help()
        sys.stderr.write(f"\nworkbench: the desktop app needs PySide6 and pyqtgraph ({exc}); "
                         "install them with: pip install 'workbench[gui]'\n")
        return Exit.FAILED
    return gui_main()


if __name__ == "__main__":
    sys.exit(main())
