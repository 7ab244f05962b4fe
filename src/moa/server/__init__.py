"""MoA as an OpenAI-compatible server, with a web page that shows the layers at work.

    from moa.server import serve
    serve(port=8000, demo=True)       # POST /v1/chat/completions with model="fake"

The threat model and the safe defaults: docs/security.md.

Needs the `server` extra: pip install 'mixture-of-agents[server]'.
"""

from moa.server.app import create_app, serve

__all__ = ["create_app", "serve"]
