"""MoA as an OpenAI-compatible server, with a web page that shows the layers at work.

    from moa.server import serve
    serve(port=8000)                  # POST /v1/chat/completions with model="fake"

Needs the `server` extra: pip install 'mixture-of-agents[server]'.
"""

from moa.server.app import create_app, serve

__all__ = ["create_app", "serve"]
