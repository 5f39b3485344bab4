"""Speed and memory targets, printed as ratios against references measured in the same run."""
