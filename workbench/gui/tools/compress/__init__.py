"""Compress: a run's size / speed / accuracy frontier and compress-to-target."""
