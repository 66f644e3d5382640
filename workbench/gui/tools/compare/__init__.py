"""Compare: race optimizers (or any field's values) on the experiment."""
