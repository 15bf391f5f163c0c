"""HTTP entry point: the Litestar app serving commands and queries."""
