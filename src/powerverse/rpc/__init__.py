"""PowerVerse rpc layer."""
