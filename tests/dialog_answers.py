"""The app's message boxes answered as a test scripts them (`workbench.gui.widgets.dialogs` is
the one place the app asks and warns), with what they said kept for the test to read."""

from __future__ import annotations

from typing import Any

from workbench.gui.widgets import dialogs


class Answers:
    """`ask` returns `next`; `warn`, `inform` and `about` only record their text."""

    def __init__(self, monkeypatch: Any, answer: Any = dialogs.Button.No) -> None:
        self.asked: list[str] = []
        self.warned: list[str] = []
        self.next = answer
        monkeypatch.setattr(dialogs, "ask", self._ask)
        for name in ("warn", "inform", "about"):
            monkeypatch.setattr(dialogs, name, self._say)

    def _ask(self, _parent: Any, _title: str, text: str, *_args: Any, **_kwargs: Any) -> Any:
        self.asked.append(text)
        return self.next

    def _say(self, _parent: Any, _title: str, text: str, *_args: Any, **_kwargs: Any) -> None:
        self.warned.append(text)
