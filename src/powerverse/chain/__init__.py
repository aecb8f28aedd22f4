"""PowerVerse chain layer."""
