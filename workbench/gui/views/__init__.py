"""Plots and canvases shared by the training view and the tools."""
