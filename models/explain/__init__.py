"""What each model family records for its Explain views, from the forward pass it already runs.

One module per family (`fcn`, `unet`, `detection`, `detr`, `maskformer`, `sam`, `grounding_dino`),
each an `Explainer` an adapter names in its ``explainer`` class attribute. The captured arrays are
small numpy arrays on ``Prediction.explain``; the pictures are drawn above (`playground.explain.views`).
"""
