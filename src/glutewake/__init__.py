"""glutewake: commodity wearables to a research-grade record of sitting and glute activation."""

__version__ = "0.1.0"

__all__ = ["__version__"]
