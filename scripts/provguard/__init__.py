"""provguard: get nRF91 TLS credentials in safely, and prove they never ship in a release image."""

__version__ = "0.1.0"
