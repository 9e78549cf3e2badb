"""What one model family's adapters share that is not an adapter: configs, a network, post-processing."""
