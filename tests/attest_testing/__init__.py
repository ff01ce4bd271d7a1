"""The test suite's support package: every helper the tests (and test scripts) share.

Importable as ``attest_testing`` because pytest puts ``tests/`` on ``sys.path``
(``pythonpath = ["tests"]`` in pyproject.toml); it is not installed and not shipped in the
wheel. Submodules, each importable on its own (the verifier-only environment has no
asyncpg or uvicorn, so nothing is imported here eagerly):

- ``attest_testing.support``: the adjustable ``Clock``, ``LiveServer``/``start_server``,
  ``make_settings``, ``Actors``, ``execute``/``with_database``, ``OPERATOR_SCOPES``,
  ``US_PASSPORT`` (was ``tests/support.py``).
- ``attest_testing.service``: problem and audit-trail helpers for service tests (was
  ``tests/service/svc_helpers.py``).
- ``attest_testing.verify``: keys, a fixed clock and a token minter for verifier tests
  (was ``tests/verify/verify_helpers.py``).
- ``attest_testing.policy``: policy-document builders (was ``tests/policy/policy_helpers.py``).
- ``attest_testing.idp``: a test identity provider (was ``tests/evidence/idp_support.py``).
- ``attest_testing.mrz``: TD3 MRZ builders (were in tests/service/test_evidence_mrz.py).
- ``attest_testing.postgres``: the test PostgreSQL (external or embedded, with a watchdog) and
  fresh databases named after the pytest-xdist worker.
- ``attest_testing.gateway``: loads examples/model_gateway by path (was
  ``tests/verify/gateway_loader.py``).
"""
