"""Search: FUSE, its baselines (random search, fixed networks), whole-network training, search orchestration over
the store, export."""
