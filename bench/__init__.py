"""pimbot benchmarks (run with `pimbot bench`)."""
