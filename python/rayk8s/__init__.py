"""rayk8s: the Python side of the rayk8s runtime (standard library only).

Port a Ray Serve application by changing its import::

    from rayk8s import serve   # instead of: from ray import serve
"""

from rayk8s import serve  # noqa: F401

__all__ = ["serve"]
