"""Load, faults, cold starts and per-call costs, measured in one run.

    python -m benchmarks [SECTION ...] [--bookings 1000] ...

Starts the Firestore and Pub/Sub emulators and the Google sandbox once, then runs each
section against them (each starts from wiped emulators and a reset sandbox):

- ``burst``: approved payments through a Pub/Sub push subscription to a running
  create_event server, every message published three times, Calendar failing
  transiently, Meet conferences pending, the server SIGKILLed mid-run and restarted.
- ``revoked``: the admin's grant revoked mid-run, then reconnected through the real
  oauth_callback function and the sandbox's consent page.
- ``busy``: busy slots under 16 concurrent clients, cached, uncached, and a bare function.
- ``cold``: every function's cold start and peak memory, against a bare function.
- ``create_event``: create_event per booking, sequential and concurrent, against the
  bare minimum the job needs made directly with the client libraries.
- ``list_events``: list_events per request from one client, cached and uncached,
  against a bare function.

Prints a table, writes ``benchmarks/results/latest.json``, and exits non-zero when a
correctness figure is wrong (a duplicate, a lost or half-written booking).
"""
