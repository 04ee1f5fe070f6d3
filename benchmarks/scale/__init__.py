"""Proof at scale: load, faults and cold starts, measured in one run.

    python -m benchmarks.scale [--only burst,revoked,busy,cold] [--bookings 1000] ...

Starts the Firestore and Pub/Sub emulators and the Google sandbox once, then runs each
section against them (each starts from wiped emulators and a reset sandbox):

- ``burst``: approved payments through a Pub/Sub push subscription to a running
  create_event server, every message published three times, Calendar failing
  transiently, Meet conferences pending, the server SIGKILLed mid-run and restarted.
- ``revoked``: the admin's grant revoked mid-run, then reconnected through the real
  oauth_callback function and the sandbox's consent page.
- ``busy``: busy slots under 16 concurrent clients, cached, uncached, and a bare function.
- ``cold``: every function's cold start and peak memory, against a bare function.

Prints a table, writes ``benchmarks/results/scale.json``, and exits non-zero when a
correctness figure is wrong (a duplicate, a lost or half-written booking).
"""
