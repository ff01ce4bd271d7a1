"""Token status lists (IETF OAuth Token Status List): entries, revocation, the list token."""
