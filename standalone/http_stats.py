"""What the HTTP server counts, for the runner's self-metrics."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class HttpStats:
    """Plain counters, written on the event loop and read at scrape time.

    ``connections_open`` is a gauge; everything else only grows.
    """

    connections_open: int = 0
    connections_accepted: int = 0
    connections_refused: int = 0  # closed at once: the connection cap was reached
    header_timeouts: int = 0  # closed: no complete request head within the header timeout
    write_timeouts: int = 0  # closed: the peer left the send buffer full for the write timeout
    bad_requests: int = 0  # answered 400 by the HTTP parser (bad request line, headers, bytes)
    scrapes: int = 0  # /metrics requests answered
    scrapes_gzip: int = 0  # of which served gzip-compressed
    renders: int = 0  # renders of the exposition; concurrent scrapes share one
    # wall time of those renders, yields to the loop included, writing the pieces out not
    render_seconds: float = 0.0
    render_errors: int = 0
    gzips: int = 0  # gzip streams made; the gzip scrapes of one render share one
    gzip_seconds: float = 0.0  # wall time of their compression steps (off the loop)
