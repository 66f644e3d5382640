"""The training engine: the loop, its step, callbacks and events, optimizers and schedules,
and the distributed set-up."""
