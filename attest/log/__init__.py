"""The transparency log: a Merkle tree over every audit event, C2SP tiles and checkpoints."""
