"""classcal's shared library, in layers that import only downward.

``core`` (configuration, errors, logs, retries, pure helpers) < ``google`` (every client
that reaches Google: Calendar, OAuth, Secret Manager, and the factory of the Firestore
client) < ``stores`` (every Firestore read and write) < ``domain`` (the rules: scheduling,
cancellation, the calendar sync, maintenance, busy slots, connecting Google) < ``web``
(HTTP helpers and pages, the one error-to-answer rule for HTTP functions, the Pub/Sub
envelope and the message contracts). ``functions/*/main.py`` sit on top.
``tests/test_boundaries.py`` fails when a module breaks a rule.
"""
