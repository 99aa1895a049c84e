"""The server side of the host agents, shared by the runner and Home Assistant.

``tokens`` makes and checks host tokens, ``store`` keeps hosts in SQLite, ``hub`` keeps each
host's live state (online, sequence numbers, caps), ``endpoint`` is the aiohttp WebSocket
handler, ``naming`` maps agent readings to node_exporter and telegraf names, ``exposition``
renders the hosts' readings and status on ``/metrics`` when scraped, and ``source`` is the
runner's ``agents`` source.
"""
