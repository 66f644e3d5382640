"""Where things are kept: run folders, spec files, atomic writes."""
