"""Smart energy meter lakehouse: simulator, native stack runner and operations tooling."""
