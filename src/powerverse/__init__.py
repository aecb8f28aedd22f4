"""PowerVerse: an open decentralized compute cloud."""

__version__ = "0.1.0"
