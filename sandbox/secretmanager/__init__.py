"""Secret Manager v1 over REST, at the paths the real REST transport uses.

`routes` -> `handlers` -> `backend` (secrets, versions and their states) -> `render`;
`models`, `errors` (the Cloud `{"error": {"code", "message", "status"}}` shape).
Imports only `sandbox.core`.
"""
