"""The wire formats the server speaks: loopml's ``/predict``, the Open Inference Protocol
(KServe V2) and MLflow's ``/invocations``, plus feedback and the admin API.

Each module exposes ``FAST_ROUTES`` (POST paths answered without Starlette), ``routes(state)``
(everything else, as Starlette routes) and ``error_body(exc, status)`` (its error format).
"""
