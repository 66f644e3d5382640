"""Workbench: train neural networks by clicking instead of coding."""

__version__ = "0.1.0"
