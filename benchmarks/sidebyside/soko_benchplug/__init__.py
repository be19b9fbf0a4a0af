"""The side-by-side benchmark's plugin: installed and enabled like any third-party plugin (an entry point)."""
