"""Video: read a clip, track objects through it with a video model, write the overlay and the tracks."""
