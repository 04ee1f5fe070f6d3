"""The bottom layer: configuration, the error tree, JSON logs, the retry vocabulary and
pure helpers (ids, encodings, the single-flight cache).

It imports nothing else of classcal's and touches nothing outside the process: no
network, no Firestore, no Google client, no web framework.
"""
