"""The commerce plugin: catalogue, carts, and a checkout that never oversells.

Other plugins import `plugins.commerce.public` only; the rest is private.
"""
