"""Where the image-build files are: ``ami/install.sh``, ``ami/systemd/*``.

They ship in the wheel as the package ``agent.ami`` (setup.py maps the repository's
``ami/`` folder to it), so an installed trueup, an editable install and a checkout on
``PYTHONPATH`` all find them.
"""

from __future__ import annotations

import os


def ami_dir() -> str:
    """The folder holding ``install.sh`` and ``systemd/``."""
    try:
        from importlib.resources import files

        folder = str(files("agent.ami"))
        if os.path.isfile(os.path.join(folder, "install.sh")):
            return folder
    except (ImportError, TypeError):
        pass
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.path.join(here, "ami")  # a checkout used straight from PYTHONPATH


def ami_file(name: str) -> str:
    """The path of ``name`` (``install.sh``, ``systemd/trueup-firstboot.service``).

    Raises FileNotFoundError when this installation lacks it.
    """
    path = os.path.join(ami_dir(), *name.split("/"))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{name} is not in this trueup installation ({ami_dir()})")
    return path
