"""The PySide6 desktop interface (installed as ``photosearch.ui``): a thin face on the engine.

Every engine call runs off the GUI thread (:mod:`photosearch.ui.tasks`); results come back
through queued signals. Start it with ``photosearch`` or ``photosearch gui``.
"""
