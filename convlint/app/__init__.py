"""The application: the engine that checks one file, the checked file set, the cache, reporters,
the command line and the flake8 plugin."""
