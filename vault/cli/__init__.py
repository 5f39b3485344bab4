"""The keyward command line."""
