"""Fleet Metrics core: sources, parsers and exporters shared by Home Assistant and the runner.

Nothing in this package may import Home Assistant; imports inside it are relative only, so
the same files work as ``custom_components.fleet_metrics.core`` and ``fleet_metrics.core``.
"""

from .sample import FieldValue, Histogram, Sample

__all__ = ["FieldValue", "Histogram", "Sample"]
