"""classcal's shared library, in layers that import only downward.

``core`` (configuration, errors, logs, retries, pure helpers) < ``google`` (every client
that reaches Google: Calendar, OAuth, Secret Manager, Pub/Sub, and the factory of the
Firestore client), with ``mercadopago`` beside it at the same rank (MercadoPago's API
client and the check of its notifications' signatures) < ``stores`` (every Firestore
read and write) < ``domain`` (the rules: scheduling, cancellation, refunds, the calendar
sync, maintenance, busy slots, connecting Google, payment notifications) < ``web`` (HTTP
helpers and pages, the one error-to-answer rule for HTTP functions, the Pub/Sub envelope
and the message contracts). ``functions/*/main.py`` sit on top.
``tests/test_boundaries.py`` fails when a module breaks a rule.
"""
