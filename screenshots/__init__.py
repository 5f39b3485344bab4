"""SVG screenshots of the dashboard for the README: `python -m screenshots.make`."""
