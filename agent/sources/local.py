"""Local sources: a bundle folder, or a bundle .tar.gz extracted into the verified cache.

Examples of SRC::

    trueup run ./recipes                      # a folder
    trueup run file:///srv/bundle.tar.gz      # a tarball; its own sha256 names the cache entry
    trueup run /srv/bundle.tar.gz#sha256=9f2c...   # a tarball that must have this sha256
"""

from __future__ import annotations

import os

from agent.errors import TrueupError
from agent.sources.base import Fetched, Source
from agent.sources.cache import bundles_dir

TARBALL_SUFFIXES = (".tar.gz", ".tgz")


class LocalSource(Source, scheme=("", "file")):
    """A folder or a .tar.gz on this host. Never touches the network."""

    remote = False

    def fetch(self) -> Fetched:
        path, _, fragment = self.url.partition("#")
        if path.startswith("file://"):
            path = path[len("file://"):]
        if not path.endswith(TARBALL_SUFFIXES) or not os.path.isfile(path):
            return Fetched(root=path, origin={"source": self.url})
        from agent.sources import archive

        expected = fragment.removeprefix("sha256=") if fragment else archive.sha256_file(path)
        try:
            root = archive.extract_verified(path, expected, bundles_dir(self.ctx.state_dir))
        except archive.BundleError as exc:
            raise TrueupError(str(exc), path) from None
        return Fetched(root=str(root), origin={"source": self.url, "sha256": expected.lower()})
