"""Built-in CLI commands: each module here exposes ``register(app)`` (picked up automatically)."""
