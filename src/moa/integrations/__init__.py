"""Thin adapters that bring recipes to where users already are, each an optional extra:

    llm_plugin     recipes as models of simonw/llm (`llm -m moa-local "..."`)     [llm]
    mcp_server     `moa mcp`: an MCP server with the tools `ask` and `list_recipes` [mcp]
    litellm        a LiteLLM custom provider (`litellm.completion(model="moa/local")`) [litellm]
    common         what they share: the recipes a host may name, the layers as data,
                   and the guard against a MoA run calling moa again

`llm:MODEL` agents (llm's own models in a recipe) are a backend: `moa.backends.llm`.
Importing this package imports none of the host packages.
"""
