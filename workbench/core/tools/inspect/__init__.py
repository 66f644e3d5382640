"""Inspect: what a trained network learned and why it answers as it does, on the run's own data.

- `network.py`: the layers as the editor numbers them (`2 Linear`), the inputs as the trainer
  normalizes them, every layer's output, the test split's predictions;
- `weights.py`: the first layer's weights (images for image inputs, a table with the feature
  names for CSV and 2-D inputs) and, for 2-D sets, each hidden unit's response over the plane;
- `attribution.py`: saliency, Integrated Gradients and Grad-CAM (Captum) for one sample, and
  the average attribution of each class's correctly classified samples;
- `equation.py`: a model with no hidden layer as an equation in the data's own units;
- `results.py`: a regression's figures and plot data, and what the trainer adds to a run's
  summary at its end (`summary_entries`);
- `inspection.py`: `Inspection`, a run opened for all of the above (one task at a time,
  each cancellable), and `inspect_run` / `write_inspection` for the command line;
- `render.py`: every view as a PNG (matplotlib's Agg canvas, never pyplot or Qt);
- `report.py`: a run's one-file HTML report.

Every view is a frozen dataclass of numpy arrays, numbers and texts (with a `how_to_read`
line), so that a panel can draw it itself or show the PNG. Nothing here imports Qt, and this
package imports nothing on import (the trainer imports `results` at a run's end).
"""
