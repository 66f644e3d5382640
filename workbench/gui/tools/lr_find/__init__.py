"""Find the learning rate: the range test on a copy of the experiment."""
