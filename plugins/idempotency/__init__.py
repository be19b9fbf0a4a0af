"""The idempotency plugin: a retried request with the same Idempotency-Key runs once and is answered the same."""
