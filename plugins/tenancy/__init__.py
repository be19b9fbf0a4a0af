"""The tenancy plugin: every request bound to one tenant, isolated by PostgreSQL row-level security.

Other plugins import `plugins.tenancy.public` only (and declare `requires = ["tenancy"]`); the rest is private.
"""
