"""TickrMeter fleet statistics: device health and request/response correlation."""
