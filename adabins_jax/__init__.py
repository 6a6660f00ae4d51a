"""AdaBins in JAX."""
