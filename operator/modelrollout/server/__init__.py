"""modelrollout.server: the model server (Open Inference Protocol v2 over HTTP).

``modelrollout.server.loading`` (fetch, verify, deserialize) is also used by the
validation gate; the HTTP parts live in ``app`` and ``runner``.
"""
