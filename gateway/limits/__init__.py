"""The three limits on image requests, checked in this order:

1. ``process_in_flight``: this process serves at most N image requests at once (503 at once beyond).
2. ``rate``: per-key token buckets (429 with ``Retry-After``), in process or shared through Redis.
3. ``tenant_in_flight``: one tenant's requests in flight in this process (429 beyond).
4. ``unbilled_failures``: one tenant's failed requests that reached the models (429 beyond).
5. ``upload_bytes``: the upload bytes this process holds at once (503 beyond).
"""
