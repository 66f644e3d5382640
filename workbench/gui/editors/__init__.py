"""The experiment's editors (model, data, optimizer, name) over the edited spec and its undo."""
