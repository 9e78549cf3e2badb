"""The core: result type, errors, model specs, images, caches, prompts and weights. Imports nothing above it."""
