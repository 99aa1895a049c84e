"""Hypothesis profiles, loaded as a plugin so that the compat run (without this conftest) has them.

CI runs each property test on the same examples every time: a red run must be reproducible and
must mean that a change broke something. Local runs keep drawing new examples, which is how
faults are found. `.ci/run` sets ``HYPOTHESIS_PROFILE=ci``.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
