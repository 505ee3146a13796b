"""Built-in example targets for the function trainer (used by the demo-free fast tests and benches)."""
