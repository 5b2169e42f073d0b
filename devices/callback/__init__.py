"""The device callback: what devices call, all day long.

``POST /v3/users/{user}/devices/{device}/callback/data`` (and ``.../callback``), one module per
concern:

- ``views``: the DRF view, thin: DRF's extension points do the rest, then ``callback_ingest``;
- ``auth``: the authentication class (device tokens, the owner's API tokens);
- ``throttle``: the rate limit ``CALLBACK_RATE``, counted in Redis leases in services mode;
- ``body``: the parser (size, depth and storable JSON) and the call's records and parameters;
- ``ingest``: the call prepared once, handed to this database's writer;
- ``rules``: refusal, deadline and answer, the rules that depend on the device's state;
- ``postgresql``: one round trip to the function of ``devices/migrations/0005_callback.sql``;
- ``portable``: the ORM, one transaction.

Records go through the bucket's own writer (``buckets.services.bucket_write_records``, on
PostgreSQL ``thinger_bucket_write``), whose clock gives records at the server's time their
milliseconds.
"""
