"""Eligibility tokens: decide, sign, record."""
