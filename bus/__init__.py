"""Transport between mtpkt processes over NNG (pynng).

Everything that touches pynng lives in this package; the rest of mtpkt sees
typed functions and classes of ours. Frames on every socket are the signed
frames of :mod:`pkts`.
"""

__all__: list[str] = []
