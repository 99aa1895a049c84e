"""OpenDTU solar gateways: HTTP API and live WebSocket."""
