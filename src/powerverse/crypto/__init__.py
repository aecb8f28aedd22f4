"""PowerVerse crypto layer."""
