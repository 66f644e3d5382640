"""The training view: Train / Pause / Stop, live curves, health and results of the run."""
