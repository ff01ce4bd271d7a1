"""SQL migrations and JSON Schemas, shipped in the wheel as ``attest._schema``."""
