"""Fork: continue a run from one of its epochs with something changed."""
