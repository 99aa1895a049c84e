"""Fleet Metrics headless runner: the shared core with Prometheus and line protocol outputs."""

__version__ = "0.1.0"
