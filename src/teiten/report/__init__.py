"""Reports and charts."""
