"""Auditing data larger than one process: exact mergeable summaries, streaming and Ray.

:mod:`audit.scale.summaries` reduces scored rows to the count of each distinct row (exact and
added across shards); :mod:`audit.scale.engine` reads shards batch by batch, locally or in a
Ray actor pool, and rebuilds the context every check reads from the merged summary.
"""
