"""Every Firestore call classcal makes: bookings and their lease, what the calendar sync
reads and writes on them, the sync state and watch channels, the connect flow's states.

It may import ``shared.core`` and ``shared.google`` (for the Firestore client). It is the
only layer that imports ``google.cloud.firestore`` or calls the client; it holds no rule
about what a booking should become, only how its documents change atomically.
"""
