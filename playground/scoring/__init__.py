"""Scoring against ground truth: the truth (`truth`), the metrics (`metrics`), the tables and drawings
the UI and API show (`views`), and the ``score`` command (`cli`)."""
