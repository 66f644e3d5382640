"""`workbench cluster SPEC.json --nodes N --gpus-per-node G`: the command that trains the
experiment on N machines, and with `--sbatch FILE` a SLURM batch script that runs it
(`sbatch FILE`). Nothing trains here; see the README's "On a SLURM cluster"."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path
from typing import Any

from workbench.commands.common import (
    CommandError,
    add_data_root,
    add_runs_dir,
    bounded,
    load_spec,
    port,
    print_result,
    with_data_root,
    workspace_from,
)
from workbench.spec import Bound


def add_parser(sub: Any) -> None:
    p = sub.add_parser("cluster", help="the command and a SLURM script that train an "
                                       "experiment on several machines")
    p.add_argument("spec", metavar="SPEC.json", help="the experiment spec (on a shared path)")
    p.add_argument("--nodes", type=bounded(Bound(1, 1_024, integer=True)), required=True,
                   help="machines in the run")
    p.add_argument("--gpus-per-node", type=bounded(Bound(1, 1_024, integer=True)),
                   required=True, metavar="G",
                   help="processes per machine: its GPUs (CPU processes for a CPU spec)")
    p.add_argument("--port", type=port, default=29500,
                   help="the rendezvous port on the first node (default 29500)")
    p.add_argument("--head", metavar="HOST",
                   help="the first node's host, for the command (default: this machine)")
    p.add_argument("--sbatch", metavar="FILE", help="write a SLURM batch script here")
    p.add_argument("--time", help="the job's time limit, as SLURM writes it (e.g. 4:00:00)")
    p.add_argument("--partition", help="the SLURM partition")
    p.add_argument("--account", help="the SLURM account")
    p.add_argument("--force", action="store_true", help="replace an existing --sbatch file")
    add_data_root(p)
    add_runs_dir(p)


def run(args: argparse.Namespace) -> int:
    from workbench.core.cluster import ClusterError, ClusterLaunch
    from workbench.core.store.atomic import write_text_atomic

    spec_path = Path(args.spec).resolve()
    spec = with_data_root(load_spec(args.spec), args)
    runs = workspace_from(args).runs.root.resolve()
    data_root = Path(args.data_root).resolve() if args.data_root else None
    try:
        launch = ClusterLaunch(spec_path, spec, args.nodes, args.gpus_per_node, runs,
                               data_root, args.port)
        command = launch.torchrun(args.head or socket.gethostname())
        script = launch.sbatch(time=args.time, partition=args.partition,
                               account=args.account) if args.sbatch else None
    except ClusterError as exc:
        raise CommandError(str(exc)) from None
    import shlex

    line = shlex.join(command)
    sys.stderr.write(f"on each of the {args.nodes} nodes (the same line; node 0 keeps the run "
                     f"in {runs}):\n  {line}\n")
    out: dict[str, Any] = {"command": line, "nodes": args.nodes,
                           "procs_per_node": args.gpus_per_node, "spec": str(spec_path),
                           "runs_dir": str(runs), "data": launch.data_folder}
    if script is not None:
        target = Path(args.sbatch)
        if target.is_dir():
            raise CommandError(f"--sbatch: {target} is a folder; name the script's file")
        if target.exists() and not args.force:
            raise CommandError(f"--sbatch: {target} exists (--force replaces it)")
        try:
            write_text_atomic(target, script)
            os.chmod(target, 0o755 & ~_umask())
        except OSError as exc:
            raise CommandError(f"--sbatch: cannot write {target} ({exc.strerror or exc})"
                               ) from None
        sys.stderr.write(f"wrote {target}; submit it with: sbatch {shlex.quote(str(target))}\n")
        out["sbatch"] = str(target)
    print_result(out)
    return 0


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
