"""What views may use of the security plugin.

- `csp_nonce()`: this response's CSP nonce. Put it on every inline `<script>` and `<style>` of an HTML page:
  `<script nonce="{{ csp_nonce }}">` with `render_template(..., csp_nonce=csp_nonce())`, or `{{ g.csp_nonce }}`
  in a template. It is fresh for every response and only valid in that response's policy.
"""

from __future__ import annotations

from quart import g


def csp_nonce() -> str:
    """The nonce the Content-Security-Policy of the response being made allows (inside a request only)."""
    nonce: str = g.csp_nonce
    return nonce
