"""The audit trail: every decision and change, written in the transaction that makes it."""
