"""Build-time helpers for ``build.spec`` (never imported by the app): what goes into the bundle."""
