"""Development and test helpers. Never installed in or imported by production code."""
