"""The dashboard's widgets, each beside its stylesheet."""
