"""mrsr: medical image super-resolution on MONAI."""

__version__ = "0.1.0"
