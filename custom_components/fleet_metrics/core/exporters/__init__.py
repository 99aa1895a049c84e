"""Sinks that turn samples into an output format."""
