"""K2 on Docker: the engine, K2's own images, container specs and the Docker backend."""
