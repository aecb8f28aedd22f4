"""PowerVerse p2p layer."""
