"""Facts about the machine -> checks with a verdict and a fix -> an environment report."""
