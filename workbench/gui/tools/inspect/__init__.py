"""The Inspect tool: what a trained network learned and why it answers as it does."""
