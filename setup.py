"""Packaging beyond what pyproject.toml can say: ``ami/`` ships as ``agent.ami``, and the
``trueup`` command is a script of its own.

The image-build scripts and systemd units live at the top of the repository (``ami/``);
mapping that folder to the package ``agent.ami`` puts them in the wheel (and makes an
editable install resolve them) without a copy under ``agent/``.

``agent/bin/trueup`` is installed as the ``trueup`` command (pip points its ``#!python``
line at the environment's interpreter). It is not a ``[project.scripts]`` entry point
because the wrapper pip writes for one imports ``re`` first: 10-15 ms of every run.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["agent", "agent.*"]), "agent.ami"],
    package_dir={"agent.ami": "ami"},
    package_data={"agent.ami": ["*.sh", "systemd/*.service", "systemd/*.timer"]},
    scripts=["agent/bin/trueup"],
)
