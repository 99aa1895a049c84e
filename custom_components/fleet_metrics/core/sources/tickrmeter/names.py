"""Which symbols and device texts may become labels and tags: short, printable, no spaces.

Any client that can publish to the broker chooses these strings, and each one ends up as a
label on a dozen series: one 1 MB symbol would make every scrape 18 MB for as long as the
runner lives. Symbols keep to the characters real tickers use (``AAPL``, ``BRK.B``,
``BTC-USD``, ``^GSPC``, ``EURUSD=X``, ``BINANCE:BTCUSDT``, ``BTC/USD``, ``M&M.NS``); device
texts (firmware, flash id) may hold any printable ASCII but spaces, quotes and backslashes.
"""

from __future__ import annotations

import re

MAX_NAME_LENGTH = 32

# The length is checked first: a regex never scans a hostile megabyte.
_SYMBOL = re.compile(r"[A-Za-z0-9._\-^=:/&+]+").fullmatch
_LABEL_TEXT = re.compile(r"[!#-\[\]-~]+").fullmatch  # printable ASCII but space, " and \


def valid_symbol(text: str) -> bool:
    """A ticker symbol that may become a ``symbol`` label."""
    return len(text) <= MAX_NAME_LENGTH and _SYMBOL(text) is not None


def valid_label_text(text: str) -> bool:
    """A device text (firmware version, flash id) that may become a label value."""
    return len(text) <= MAX_NAME_LENGTH and _LABEL_TEXT(text) is not None
