"""Benchmarks that need more than `maxbot bench`: whole processes talking to the stand-in."""
