"""The one thread adapter (worker), every panel's tasks, and the feed of the run store."""
