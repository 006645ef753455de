"""photosearch: find photos on your own disks from a typed description.

The engine (this package, less ``photosearch.ui``) never imports Qt, never prints and never
exits: it raises the typed errors of :mod:`photosearch.errors` and reports progress through
callbacks. The GUI and the command line are thin faces on it.
"""

__version__ = "0.1.0"
