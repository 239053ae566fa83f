"""pimbot teams adapter."""
