"""A request's life: the one mechanism that changes its state, and the grants it holds."""
