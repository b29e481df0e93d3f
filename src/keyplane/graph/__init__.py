"""The identity graph: model language, compiled model, and the in-memory query engine."""
