"""PowerVerse cli layer."""
