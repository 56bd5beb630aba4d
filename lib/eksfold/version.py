"""The package version, in a module of its own so modules can import it without the package's
lazy conveniences (``eksfold.run_pipeline``) closing an import circle."""
__version__ = "0.1.0"
