"""Reading a finished (or running) study: ranking, statistics, reseed, maturity, export."""
