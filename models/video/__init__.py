"""The video adapters (SAM 2 and SAM 3 tracking) and the session state they share."""
