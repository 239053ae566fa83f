"""Fakes shipped with pimbot for its own tests and for people building on it."""
