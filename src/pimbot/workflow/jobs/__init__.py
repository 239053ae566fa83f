"""Handlers of the durable jobs, by kind."""
