"""Search: hyperparameter search with Optuna over the experiment."""
