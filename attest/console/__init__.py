"""The web console at ``/console``: server-rendered pages for reviewers and auditors.

Its pages call the same service functions as the API (never SQL: the import contracts in
pyproject.toml say so), acting as the API client whose key signed in. Sessions are kept
server-side (:mod:`attest.console.service`); the browser holds a random id only.
"""
