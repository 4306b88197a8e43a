"""One module per CLI verb; each has ``register(subparsers)`` and a ``run(args)`` it binds."""
