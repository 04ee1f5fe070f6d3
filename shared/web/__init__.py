"""Where requests and messages come in: HTTP helpers, pages and the one error-to-answer
rule for HTTP functions (``serving``), the Pub/Sub envelope and its ack/retry rule
(``pubsub``), and the message contracts that turn a message into plain values.

It may import every layer below and flask. ``functions/*/main.py`` call into it and
stay a few lines each.
"""
