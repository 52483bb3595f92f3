"""DP-SGD: accounting (dp-accounting), the private training step, Poisson sampling, and the membership audit."""
