"""A `Prediction` made visible: overlays, legends, panel views, comparisons, and file exports."""
