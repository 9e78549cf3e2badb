"""Explain views: each model's mechanism drawn from what its forward pass recorded (`views`), with
the drawing pieces they share (`drawing`)."""
