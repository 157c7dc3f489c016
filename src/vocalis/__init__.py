"""vocalis: realtime voice agents whose memory matches what the caller heard."""

__version__ = "0.1.0"
