"""protgen: protein backbone generation with Latent Process Generator Matching."""

__version__ = "0.1.0"
