"""A local stand-in for the Google services classcal uses (Calendar v3, OAuth 2.0,
Secret Manager v1), faithful enough that the real client libraries work against
it with only their endpoints changed.

Run it with `python -m sandbox --port 0`, or in a thread with
`sandbox.server.make_server(host, port)`; drive it with `sandbox.control.SandboxControl`.
"""
