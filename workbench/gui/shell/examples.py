"""The bundled example experiments, and the guard that keeps saves out of Workbench's own folder.

An example is a file inside the installed package: opening it must give an untitled copy, and
no save may write into the package (an update would replace it, another user would see it).
The examples are a handful of small files shipped with the app, so reading them on demand is
quick; their one-line descriptions are made from the specs themselves and cannot go stale.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import workbench
from workbench import spec as specmod
from workbench.paths import resources_dir
from workbench.spec import OPTIMIZER_TITLES, ExperimentSpec, SpecError
from workbench.spec.datasets import DATASETS

_ACRONYMS = frozenset({"mnist", "mlp", "cnn", "cifar10", "csv", "rnn", "gpu"})


@dataclass(frozen=True)
class Example:
    path: Path
    spec: ExperimentSpec

    @property
    def title(self) -> str:
        """The file's stem as a person reads it: `Moons logistic`, `MNIST small CNN`."""
        words = [w.upper() if w in _ACRONYMS else w for w in self.path.stem.split("_")]
        return " ".join(words)[:1].upper() + " ".join(words)[1:]

    @property
    def description(self) -> str:
        """One line: the dataset, the network's size, the optimizer and the epochs."""
        s = self.spec
        entry = DATASETS.get(s.data.name)
        data = entry.title if entry is not None else s.data.name
        n = len(s.model.layers)
        return (f"{data} · {n} layer{'s' if n != 1 else ''} · "
                f"{OPTIMIZER_TITLES.get(s.optim.name, s.optim.name)} · {s.train.epochs} epochs")


def examples_dir() -> Path:
    return resources_dir() / "examples"


@cache
def examples() -> tuple[Example, ...]:
    """Every bundled example that loads, by file name (the package does not change while the
    app runs, so they are read once)."""
    found = []
    for path in sorted(examples_dir().glob("*.json")):
        try:
            found.append(Example(path, specmod.load(path)))
        except SpecError:
            continue  # a damaged installation: offer the others
    return tuple(found)


def package_folders() -> tuple[Path, ...]:
    """The folders that belong to the installed app: its resources and the package itself."""
    return (resources_dir().resolve(), Path(workbench.__file__).resolve().parent)


def is_bundled(path: str | Path) -> bool:
    """True when `path` lies inside Workbench's own folders (an example, the package)."""
    target = Path(path).expanduser().resolve()
    return any(target.is_relative_to(folder) for folder in package_folders())
