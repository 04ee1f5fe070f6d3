"""Everything that talks to MercadoPago: its payments API client (payments, merchant
orders, refunds), its errors as classcal's, and the check of its notifications'
signatures.

Beside ``shared.google`` at the same rank, for the same reason: a client of a service
outside classcal. It may import ``shared.core`` and ``requests``; never a Google client,
Firestore or the other layers, and ``shared.google`` does not import it. It knows
nothing of bookings: the domain decides what a payment means.
"""
