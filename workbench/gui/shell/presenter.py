"""What the window and the Runs list decide, Qt-free (tested without a QApplication): the
Runs list's actions built from the tool registry, the window's title, the file name Save As
suggests, why the experiment cannot train, what About says of the device, a stored run as
a document, and what closing asks about the jobs still running.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from workbench import spec as specmod
from workbench.core.store.runs import Run, RunInfo, slug
from workbench.gui.run_rules import why_not
from workbench.gui.tools.registry import TOOLS, ToolEntry
from workbench.spec import ExperimentSpec, SpecError
from workbench.spec.datasets import DATASETS


@dataclass(frozen=True)
class ListAction:
    """An action of the list on the selected run: its own (open, resume, folder, delete) or a
    tool's (`key` names it in the registry; `needs` is its `RunAction.needs`). `primary` ones
    are buttons too; the rest sit in the More menu beside them."""

    key: str
    text: str
    tip: str
    needs: str | None = None
    primary: bool = False


def list_actions(tools: Sequence[ToolEntry] = TOOLS) -> tuple[ListAction, ...]:
    """What the list offers, in menu order: open and resume, then each tool that declares a run
    action (in the registry's order), then the folder and delete."""
    offered = [ListAction(t.key, t.run_action.text, t.run_action.tip, t.run_action.needs,
                          t.run_action.primary)
               for t in tools if t.run_action is not None]
    return (ListAction("open", "Open in editor", "Load the run's experiment into the editor",
                       primary=True),
            ListAction("resume", "Resume", "Continue the run from its last checkpoint",
                       primary=True),
            *[a for a in offered if a.primary], *[a for a in offered if not a.primary],
            ListAction("folder", "Show folder", "Open the run's folder in the file manager"),
            ListAction("delete", "Delete…", "Remove the run and its files for good"))


def window_title(path: Path | None, doc_title: str | None) -> str:
    """The window's title: the file's name, an untitled document's title, or "untitled"; `[*]`
    is where Qt marks unsaved changes."""
    name = path.name if path is not None else doc_title or "untitled"
    return f"{name}[*] — Workbench"


def suggested_file_name(name: str) -> str:
    """The file Save As offers for an experiment called `name`: its letters, digits, dashes,
    underscores and spaces (anything else a dash), `experiment` when nothing is left."""
    safe = slug(name, limit=len(name), fallback="", keep="-_ ").strip()
    return f"{safe or 'experiment'}.json"


def blocked_reason(shape_problem: str | None, live: ExperimentSpec,
                   memory_problem: str | None) -> str | None:
    """The first reason the experiment cannot train: a shape that does not fit, then a value
    the spec refuses, then memory it will not fit in; None when it can train."""
    if shape_problem:
        return shape_problem
    try:
        specmod.validate(live)
    except SpecError as exc:
        return str(exc)
    return memory_problem


def device_text(gpu_name: str | None) -> str:
    """What About says of the device: None while torch is loading, "" with no CUDA GPU."""
    if gpu_name is None:
        return "still looking"
    return f"GPU: {gpu_name}" if gpu_name else "CPU (no CUDA GPU found)"


def run_document(run_dir: str) -> tuple[ExperimentSpec, str]:
    """A stored run's experiment and the title it opens under; RunError says why it cannot."""
    spec = Run(Path(run_dir)).spec()
    return spec, f"{spec.name} (from run {Path(run_dir).name})"


def running_jobs_question(titles: Sequence[str]) -> str:
    """What closing the window asks when jobs are running: each named, and what stopping does
    (a run stops after its step and is saved, resumable; an abandoned job is cut short)."""
    names = "\n".join(f"  \u2022 {title}" for title in titles)
    one = len(titles) == 1
    return (f"{'This job is' if one else 'These jobs are'} still running:\n{names}\n\n"
            f"Stop {'it' if one else 'them'} and quit? A run stops after its step and is "
            "saved, so it can be resumed; a job that does not stop within a few seconds is "
            "left behind (the log says which).")


def launch_note(nodes: int, runs_dir: Path, spec_path: Path, data: str | None,
                dataset: str) -> str:
    """What the launch dialog says under the command: where to run it, which node keeps the
    run, and what every node must see (`data`: the data folder, None for none; `dataset` the
    spec's data.name)."""

    where = ("Run it on the machine named as the first node" if nodes == 1 else
             f"Run the same line on each of the {nodes} machines, the first node's included "
             "(the rendezvous numbers them as they join, so no --node-rank is needed)")
    entry = DATASETS.get(dataset)
    if data:
        data_text = f"the data in {data}; "
    elif entry is not None and entry.kind in ("toy2d", "regression"):
        data_text = ""  # generated from the seed on every node
    else:
        data_text = "the data (or each node downloads it, which needs the internet there); "
    return (f"{where}. Node 0 keeps the run in {runs_dir} and shows its progress; every node "
            f"ends with a line naming the run's folder and exits 0 when it finished. Every "
            f"node must see, at the same paths: the experiment, saved as {spec_path} when you "
            f"copy the command or save the script; {data_text}and this Python environment.")


def sbatch_file_name(name: str) -> str:
    """The file Save SLURM script offers for an experiment called `name`."""
    return suggested_file_name(name).removesuffix(".json") + ".sbatch"


def report_run(selected: RunInfo | None, shown: str | None,
               infos: Sequence[RunInfo]) -> str | None:
    """The run File > Export report… reports: the one selected in the Runs list, else the one
    the training view shows, else the newest; each only once it has ended (a failed run's
    report says why it failed). None when no run has ended."""
    def ended(info: RunInfo | None) -> bool:
        return info is not None and why_not("report", info, "ended") is None

    if ended(selected):
        assert selected is not None
        return str(selected.path)
    shown_info = next((i for i in infos if str(i.path) == shown), None)
    if ended(shown_info):
        return shown
    return next((str(i.path) for i in infos if ended(i)), None)


def report_file_name(run_dir: str) -> str:
    """The file Export report offers for a run: its folder's name, `-report.html`."""
    return f"{Path(run_dir).name}-report.html"
