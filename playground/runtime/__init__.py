"""Where model work runs: the `ModelManager` (loads, budget, eviction), the `Playground` service and
its result cache, the composites built from other models, and the heap trim after evictions."""
