"""The tools on runs and experiments, one package each, declared in `registry.py`."""
