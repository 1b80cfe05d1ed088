"""Packaging beyond what pyproject.toml can say: ``ami/`` ships as ``agent.ami``.

The image-build scripts and systemd units live at the top of the repository (``ami/``);
mapping that folder to the package ``agent.ami`` puts them in the wheel (and makes an
editable install resolve them) without a copy under ``agent/``.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["agent", "agent.*"]), "agent.ami"],
    package_dir={"agent.ami": "ami"},
    package_data={"agent.ami": ["*.sh", "systemd/*.service", "systemd/*.timer"]},
)
