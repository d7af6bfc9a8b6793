"""Render an archive across machines: ``restorer farm`` on Ray.

Each episode is cut into chunks of about ``--chunk`` length, snapped to scene cuts
(:mod:`~restorer.farm.plan`); each chunk is one Ray task that runs the ordinary export
(:func:`restorer.render.render`) over its range, video only, written atomically
(:mod:`~restorer.farm.tasks`). The driver (:mod:`~restorer.farm.run`) keeps a manifest in the
output folder (:mod:`~restorer.farm.manifest`), so a second run skips what is done; when an
episode's chunks are all there they are joined without re-encoding, the source's audio and
subtitles muxed once, and the result checked against the source before it is renamed into place
(:mod:`~restorer.farm.assemble`). Only :mod:`~restorer.farm.tasks` and
:mod:`~restorer.farm.run` import Ray, and only when a farm runs.
"""
