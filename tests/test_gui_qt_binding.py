"""The Qt binding must not leak references to None or True (PySide6 6.12.0 does on 3.11)."""

import sys

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QObject, Signal  # noqa: E402
from PySide6.QtWidgets import QLabel  # noqa: E402


class _Emitter(QObject):
    ping = Signal(int)


def test_void_calls_and_emits_keep_none_and_true_alive(qtbot):
    emitter, label = _Emitter(), QLabel()
    qtbot.addWidget(label)
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for i in range(500):
        emitter.ping.emit(i)
        label.setText(str(i))
    assert abs(sys.getrefcount(None) - none_before) < 50
    assert abs(sys.getrefcount(True) - true_before) < 50
