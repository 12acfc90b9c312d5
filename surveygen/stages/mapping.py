"""Map: attach the digests to the final outline, by node id.

Digests are made against the skeleton (or against an earlier outline the user then edited);
refinement keeps the ids of nodes it does not change, so most evidence simply stays on its
node. A paper is digested again only when its digest no longer fits the final outline:

- evidence sits on a node that vanished or became a parent (merged, removed, split); or
- the paper had no evidence at all and the final outline has leaves the old one lacked (a
  section added since may be exactly where it belongs).

Everything else is reused as it is, at no cost.
"""

from __future__ import annotations

from collections.abc import Collection

from surveygen.models import Digest, Outline


def needs_redigest(digest: Digest, made_for: Collection[str], final: Outline) -> bool:
    """True when ``digest``, made against an outline with leaves ``made_for``, must be made
    again for ``final`` (see the module docstring)."""
    leaves = {leaf.id for leaf in final.leaves()}
    if not digest.node_ids() <= leaves:
        return True
    return not digest.nodes and bool(leaves - set(made_for))


def reusable(digest: Digest, made_for: Collection[str], final: Outline) -> Digest | None:
    """``digest`` for ``final`` when it can be reused there, else None."""
    return None if needs_redigest(digest, made_for, final) else digest
