"""Prune: a sparsity slider on a trained run, and a smaller run made from it."""
