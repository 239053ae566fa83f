"""Telling people: the outbox written with each change, delivery, and card redraws."""
