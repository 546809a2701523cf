"""K2's stack: one typed topology, a local backend and a Pulumi program that both read it."""
