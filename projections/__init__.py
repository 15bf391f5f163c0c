"""Read side: one module per read model (tables, event handlers, queries)."""
