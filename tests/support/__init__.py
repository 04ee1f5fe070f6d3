"""What tests share besides fixtures: builders of bookings, messages and clients.

Fixtures live in ``tests/conftest.py`` (pytest finds them; nothing imports conftest).
The names the local stack uses (the OAuth client, the admin, the project) come from
``localstack.constants``, the stack's environment from ``localstack.stack.environment``.

- ``scheduling``: bookings as the booking page writes them, payments, deliveries.
- ``calendar_sync``: the calendar webhook's server, channels, the admin's own edits.
- ``sandbox_clients``: Google clients built straight on the sandbox (its own tests).
- ``retries``: the Google client's retries made real but quick, for the tests of them.
"""
