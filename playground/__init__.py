"""Vision Playground: upload an image and compare landmark vision models side by side."""
