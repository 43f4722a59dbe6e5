"""Sessions from captures: bounded reassembly of what clients sent."""
