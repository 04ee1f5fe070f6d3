"""The /_sandbox/ control API, which exists at no Google: tests, benchmarks and demos
set the scene with it (clients, tokens, calendars, knobs, faults) and look behind it
(stats, events, channels).

`client` is its Python client, `SandboxControl` (standard library only, re-exported
here: `from sandbox.control import SandboxControl`). Server side: `routes` ->
`handlers` -> `backend` (a facade over the other APIs' backends, the fault table and
the stats) and `errors`. The only API package that imports other API packages.
"""

from sandbox.control.client import SandboxControl, SandboxControlError

__all__ = ["SandboxControl", "SandboxControlError"]
