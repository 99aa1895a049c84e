"""Tasmota devices over MQTT: native discovery, telemetry, state and LWT."""
