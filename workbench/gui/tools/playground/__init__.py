"""Playground: optimizers racing on classic 2-D test functions."""
