"""The dashboard's screens, each beside its stylesheet."""
