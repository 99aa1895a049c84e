"""Compact statistics kept by aggregating sources."""
