"""The host agent: collects host metrics and pushes them to servers over one WebSocket each.

Runs on the host, never imports Home Assistant; ``protocol`` is shared with the servers.
"""
