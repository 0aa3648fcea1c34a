"""nbdetect: rescue object-detection training in notebooks."""
__version__ = "0.1.0"
