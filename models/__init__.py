"""One adapter per model family; each is imported only when its model is first used."""
