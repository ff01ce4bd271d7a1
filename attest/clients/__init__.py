"""API clients: scoped API keys in tenants."""
