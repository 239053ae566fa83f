"""pimbot: Privileged Identity Management in chat."""

__version__ = "0.1.0"
