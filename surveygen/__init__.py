"""surveygen: long-form, cited literature surveys written from real papers."""

from __future__ import annotations

__version__ = "0.1.0"
