"""The experiment being edited: its Qt model (a change signal only for a real change) and the
undo commands that change it; the window, the editors and the tools share one of each."""
