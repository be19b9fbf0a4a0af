"""The payments plugin: payment intents, the record of truth for money (docs/payments.md)."""
