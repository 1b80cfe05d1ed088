"""trueup: converge an EC2 instance to the state its recipes declare."""

__version__ = "0.1.0"
