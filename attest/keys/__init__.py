"""Signing keys: the keystore (private halves), the key records (public halves, state)."""
