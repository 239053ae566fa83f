"""pimbot console adapter."""
