"""K2's Pulumi program for Docker: one ComponentResource per module, wired in infra/__main__.py.

Every image, port, probe and memory limit comes from `k2stack.topology`, the same topology
the local backend runs.
"""
