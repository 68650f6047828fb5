"""`make demo`: seed a realistic model fleet on the local cluster (see `seed.seed_fleet`)."""
