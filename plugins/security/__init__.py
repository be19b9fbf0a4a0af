"""The security plugin: strict response headers with a per-response CSP nonce, a CORS allowlist, CSRF checks.

Views use `plugins.security.public` (the CSP nonce); integrators configure config/security.yaml (docs/security.md).
"""
