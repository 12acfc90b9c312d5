"""Where the bundled product content (``prompts/``, ``templates/``) lives at run time.

Both folders sit at the top of the repository and are force-included in the wheel as
``surveygen/prompts`` and ``surveygen/templates`` (see pyproject.toml). An installed wheel
finds them inside the package; an editable install or a source checkout finds them next to
the package.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Literal

ResourceName = Literal["prompts", "templates"]


def resource_dir(name: ResourceName) -> Path:
    """The real directory holding the bundled ``name`` folder; RuntimeError if neither exists."""
    packaged = files("surveygen") / name
    # Jinja's FileSystemLoader needs a real folder; a zipped package has none, so skip it.
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parent.parent / name
    if checkout.is_dir():
        return checkout
    raise RuntimeError(
        f"surveygen's bundled {name}/ folder is missing: looked in {packaged} (installed "
        f"package) and {checkout} (source checkout). Reinstall surveygen."
    )
