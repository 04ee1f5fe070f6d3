"""The IAM Credentials API's `signJwt`, and the service accounts it signs for.

`routes` -> `handlers` -> `backend` (registered service accounts: each has a
Google-managed key that `signJwt` signs with, and the user-managed keys issued as key
files) -> `render`. `models` holds the stored shapes, `errors` the Cloud error body.
Imports only `sandbox.core`; OAuth's token endpoint reads the public keys through a
plain callable wired in `app.py`.
"""
