"""pimbot server adapter."""
