"""The Search panel's study settings: the objective, the pruner, how many trials (and how many
at random first), the storage and the study's name, picked from the storage's studies."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QFormLayout, QGroupBox, QLineEdit, QSpinBox, QWidget

from workbench.core.store.runs import RunStore
from workbench.core.tools.search import (
    DEFAULT_STARTUP,
    MAX_STARTUP,
    OBJECTIVES,
    PRUNERS,
    StudyInfo,
    default_storage,
)


class StudyForm(QGroupBox):
    """`storageChanged` when the storage is edited; `studyPicked` when a study is picked from
    the box (a new name typed starts a new study instead)."""

    storageChanged = Signal()
    studyPicked = Signal()

    def __init__(self, runs: RunStore, parent: QWidget | None = None) -> None:
        super().__init__("Study", parent)
        self.runs = runs
        form = QFormLayout(self)
        self.objective_combo = QComboBox()
        self.objective_combo.setMinimumContentsLength(14)  # the column may be narrower
        self.objective_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.objective_combo.addItem("by the task (accuracy or loss)", None)
        self.objective_combo.setToolTip("By the task: the validation accuracy for a "
                                        "classifier, the validation loss for regression")
        for name, direction in OBJECTIVES.items():
            self.objective_combo.addItem(f"{name} ({direction})", name)
        self.pruner_combo = QComboBox()
        for name in PRUNERS:
            self.pruner_combo.addItem(name, name)
        self.trials_spin = QSpinBox()
        self.trials_spin.setRange(1, 100_000)
        self.trials_spin.setValue(20)
        self.startup_spin = QSpinBox()
        self.startup_spin.setRange(0, MAX_STARTUP)
        self.startup_spin.setValue(DEFAULT_STARTUP)
        self.startup_spin.setToolTip("Trials sampled at random before TPE learns from them")
        self.storage_edit = QLineEdit()
        self.storage_edit.setPlaceholderText("search.db in the runs folder")
        self.storage_edit.setToolTip("Any SQLAlchemy database URL; give several machines the "
                                     "same one to share the work. Empty: an SQLite file, "
                                     f"search.db in {runs.root}")
        self.storage_edit.editingFinished.connect(self.storageChanged)
        self.study_combo = QComboBox()  # the storage's studies; a new name starts a new one
        self.study_combo.setEditable(True)
        self.study_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.study_combo.setMinimumContentsLength(14)
        self.study_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.study_combo.lineEdit().setPlaceholderText("named from the experiment")
        self.study_combo.setToolTip("Pick a stored study to show its trials (Run continues "
                                    "it), or type a new name to start one")
        self.study_combo.activated.connect(self.studyPicked)
        form.addRow("objective", self.objective_combo)
        form.addRow("pruner", self.pruner_combo)
        form.addRow("trials", self.trials_spin)
        form.addRow("random trials", self.startup_spin)
        form.addRow("storage", self.storage_edit)
        form.addRow("study", self.study_combo)


    def document(self) -> dict[str, Any]:
        """What the form adds to a space document: objective, pruner, random trials."""
        raw: dict[str, Any] = {}
        objective = self.objective_combo.currentData()
        if objective is not None:
            raw["objective"] = objective
        raw["pruner"] = self.pruner_combo.currentData()
        raw["startup_trials"] = self.startup_spin.value()
        return raw

    def set_document(self, raw: dict[str, Any]) -> None:
        """Show a space document's objective, pruner and random trials."""
        index = self.objective_combo.findData(raw.get("objective"))
        self.objective_combo.setCurrentIndex(max(0, index))
        self.pruner_combo.setCurrentIndex(max(0, self.pruner_combo.findData(
            raw.get("pruner", "median"))))
        startup = raw.get("startup_trials", DEFAULT_STARTUP)
        self.startup_spin.setValue(startup if isinstance(startup, int) else DEFAULT_STARTUP)

    def storage(self) -> str | None:
        """The storage typed (None: the default)."""
        return self.storage_edit.text().strip() or None

    def url(self) -> str:
        """The storage's URL, the default one when none is typed."""
        return self.storage() or default_storage(self.runs)

    def study(self) -> str:
        return self.study_combo.currentText().strip()

    def show_studies(self, studies: list[StudyInfo]) -> None:
        """Offer the storage's studies (each with its line as a tooltip), keeping what is
        typed."""
        typed = self.study_combo.currentText()
        self.study_combo.clear()
        for info in studies:
            self.study_combo.addItem(info.name)
            self.study_combo.setItemData(self.study_combo.count() - 1, info.line(),
                                         Qt.ItemDataRole.ToolTipRole)
        self.study_combo.setEditText(typed)
