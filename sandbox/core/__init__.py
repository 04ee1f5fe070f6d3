"""The generic pieces every sandbox API is built from, knowing no API in particular.

`routing` (routes tables, the request a handler sees, replies, the `Api` descriptor),
`errors` (the base error and JSON answers), `faults` and `stats` (what the control API
injects and reads), `schema` and `fields` (discovery-schema checks, `fields=` partial
responses), `signing` (the RS256 key), `timeutil` and `ids`. Modules here import only the
standard library, third-party packages and each other, never an API package.
"""
