"""HTTP routes: thin, each a permission, one service call and a response model."""
