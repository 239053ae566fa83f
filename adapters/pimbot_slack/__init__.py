"""pimbot slack adapter."""
