"""HTTP plumbing shared by every domain: problem responses, authentication, context."""
