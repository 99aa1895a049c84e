"""One MQTT session per broker, shared by every source that uses it."""
