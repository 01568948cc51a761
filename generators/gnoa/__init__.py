"""GN-OA: graph-network energy model + Bayesian optimisation structure generator."""
