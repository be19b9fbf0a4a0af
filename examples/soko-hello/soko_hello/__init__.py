"""soko-hello: an example third-party soko plugin."""
