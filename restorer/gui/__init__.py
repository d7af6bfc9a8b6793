"""The restoration desk: the only package in Restorer that imports Qt.

Pure-Python pieces (``state``, ``cache``, ``preview``) are importable and testable without Qt;
the widgets (``main_window``, ``viewer``, ``timeline``, ``controls``, ``export_dialog``) are thin
views over them, and ``workers`` runs the library's generators on the Qt thread pool.
"""
