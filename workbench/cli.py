"""`workbench`: opens the app; `workbench train|runs|...` work headless.

Each subcommand lives in `workbench/commands/<name>.py` with `add_parser` and `run`.
A bad spec or argument exits with status 2 and one line naming the problem.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from workbench import __version__

# Modules in workbench/commands; a command's name is its module's with "-" for "_".
COMMANDS = ("train", "runs", "resume", "compare", "prune", "export", "compress", "lr_find",
            "fork", "search", "studies", "cluster", "inspect", "report")


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


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
    return 2


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
    internal = _internal(list(sys.argv[1:] if argv is None else argv))
    if internal is not None:
        return internal
    parser = build_parser()
    args = parser.parse_args(argv)
    from workbench import logs

    logs.configure(verbose=args.verbose)
    if args.command is None:
        return _open_app()
    from workbench.commands.common import CommandError

    module = importlib.import_module(f"workbench.commands.{args.command.replace('-', '_')}")
    try:
        return module.run(args)
    except CommandError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        sys.stderr.write("workbench: interrupted\n")
        return 130


def _open_app() -> int:
    try:
        from workbench.gui.app import main as gui_main
    except ImportError as exc:
        build_parser().print_help()
        sys.stderr.write(f"\nworkbench: the desktop app needs PySide6 and pyqtgraph ({exc}); "
                         "install them with: pip install 'workbench[gui]'\n")
        return 1
    return gui_main()


if __name__ == "__main__":
    sys.exit(main())
