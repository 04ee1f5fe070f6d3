"""Google OAuth 2.0: the consent screen (HTML, under /o/oauth2/), the token and
revocation endpoints and the signing certificates (JSON).

`routes` (two `Api`s: the consent screen answers errors as HTML pages, the token
endpoints as RFC 6749 JSON) -> `handlers` -> `backend` (clients, grants, codes and
tokens, the rules of each grant type, id_token claims) -> `render` (the consent page,
redirects, token responses). `models` holds the stored shapes, `errors` both error
shapes. Imports only `sandbox.core`.
"""
