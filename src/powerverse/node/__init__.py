"""The node: chain, transaction pool, block production and RPC, put together."""
