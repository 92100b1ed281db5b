"""One module per protocol area; each handler takes a plain request dict and returns a
plain response dict (see codec.py), whatever the API version."""
