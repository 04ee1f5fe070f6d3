"""Everything that talks to Google's APIs: the client factories and their endpoints
(sandbox or Google), the Calendar client with classcal's error translation, the token
store in Secret Manager, and the OAuth endpoints.

It may import ``shared.core``. It is the only layer that imports Google's client
libraries or builds a client (the Firestore client too, which only the stores use). It
never calls Firestore and knows nothing of bookings.
"""
