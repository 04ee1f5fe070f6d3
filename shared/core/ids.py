"""Checks on ids that come from outside (requests, events, other documents). Pure."""

from __future__ import annotations


def is_document_id(value: object, max_length: int = 1500) -> bool:
    """Whether Firestore accepts ``value`` as a document id: not empty, no '/', not '.'
    or '..', not a reserved ``__*__`` name. Ids read from requests, events or other
    documents are checked first, so a bad one is "not found", not a Firestore error."""
    if not isinstance(value, str) or not 0 < len(value) <= max_length:
        return False
    reserved = len(value) >= 4 and value.startswith("__") and value.endswith("__")
    return "/" not in value and value not in (".", "..") and not reserved
