"""The network layer: the hardened HTTP client and the base-URL rules.  Uses only
vault.core."""
