"""What works on trained runs and experiments: prune, export, compare, the loss landscape and
the optimizer playground's surfaces."""
