"""The rules: what a class's event looks like, scheduling and cancelling it exactly once,
what each payment status does, applying Calendar changes, maintenance, busy slots and
connecting the school's Google account.

It may import ``shared.core``, ``shared.google`` and ``shared.stores``; it takes plain
values (never a message or a request), and never imports a web framework, a Google
client library or Firestore.
"""
