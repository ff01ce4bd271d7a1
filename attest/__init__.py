"""attest: an eligibility attestation authority.

The base install is the offline verifier, :mod:`attest.verify`. The service (the
``server`` extra) lives in the other subpackages and is never imported by the verifier.
"""

__version__ = "0.1.0"
