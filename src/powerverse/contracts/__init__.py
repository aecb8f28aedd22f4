"""PowerVerse contracts layer."""
