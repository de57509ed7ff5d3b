"""Serving slim.  ``slim.serve.ray``: a Ray Serve deployment with an
OpenAI-compatible HTTP route (``pip install 'slim[ray]'``)."""
