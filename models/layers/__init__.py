"""Faster layers: drop-in replacements for library layers, each computing what the library computes.

Each module says why the library's layer is slow and what replaces it (what each saved, and on
which host, is in docs/performance.md). An adapter records what it replaced
(`playground.core.patches.Patch`), so ``python -m playground models --layers KEY`` lists every
change made to a loaded model.
"""
