"""What people ask pimbot to do: activate, approve, extend, end, assign, and the queries."""
