"""Shared small widgets, layouts, the app's style and message boxes."""
