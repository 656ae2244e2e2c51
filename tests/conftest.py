# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Makes ``ansible_collections.ai_mesh.helm_engine`` importable from this checkout.

The same as ``make collection``: build/collections/ansible_collections/ai_mesh/helm_engine is a
symlink to the repository root, and build/collections goes on sys.path. Paths are relative to
this file, so a clone anywhere works (and a link left by another clone is re-pointed).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
COLLECTIONS_DIR = REPO_ROOT / "build" / "collections"
COLLECTION_LINK = COLLECTIONS_DIR / "ansible_collections" / "ai_mesh" / "helm_engine"


def _ensure_collection_link() -> None:
    if COLLECTION_LINK.is_symlink():
        if COLLECTION_LINK.resolve() == REPO_ROOT:
            return
        COLLECTION_LINK.unlink()  # dangling, or another clone's checkout
    elif COLLECTION_LINK.exists():
        return  # a real directory someone put there on purpose; use it as it is
    COLLECTION_LINK.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(REPO_ROOT, COLLECTION_LINK, target_is_directory=True)


_ensure_collection_link()
if str(COLLECTIONS_DIR) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS_DIR))
