"""Where the app keeps its settings (window layout, recent files): an INI file under the user
data folder, so a test's WORKBENCH_HOME keeps them out of the person's real settings."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

from workbench.paths import user_data_dir
from workbench.spec import ExperimentSpec, LayerSpec

RECENT_MAX = 8
PROJECT_FILTER = "Workbench experiments (*.json);;All files (*)"


def settings() -> QSettings:
    path = user_data_dir() / "settings.ini"
    path.parent.mkdir(parents=True, exist_ok=True)
    return QSettings(str(path), QSettings.Format.IniFormat)


def recent_files(store: QSettings) -> list[str]:
    value = store.value("recent", [])
    if isinstance(value, str):
        value = [value]
    return [str(v) for v in value or []]


def add_recent(store: QSettings, path: str | Path) -> list[str]:
    path = str(Path(path).resolve())
    files = [path, *[f for f in recent_files(store) if f != path]][:RECENT_MAX]
    store.setValue("recent", files)
    return files


def remove_recent(store: QSettings, path: str) -> None:
    store.setValue("recent", [f for f in recent_files(store) if f != path])


def default_spec() -> ExperimentSpec:
    """What the app opens with: a small net on two spirals, trained in seconds on a CPU."""
    spec = ExperimentSpec(name="spirals")
    spec.data.name = "spirals"
    spec.data.noise = 0.1
    spec.model.layers = [LayerSpec("Linear", {"out": 16}), LayerSpec("Tanh"),
                         LayerSpec("Linear", {"out": 16}), LayerSpec("Tanh"),
                         LayerSpec("Linear", {"out": 2})]
    spec.optim.lr = 0.02
    spec.train.epochs = 40
    return spec
