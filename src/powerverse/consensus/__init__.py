"""PowerVerse consensus layer."""
