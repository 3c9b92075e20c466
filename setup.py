"""Packages for setuptools (the metadata is in pyproject.toml).

Only here because pyproject.toml cannot combine package discovery with a mapped directory:
the top-level `runbooks/`, where people read the pages, is installed as the package
`vigil_runbooks`, so the default runbook links resolve in a wheel or a container too
(`alerts/runbooks.py` finds it through `importlib.resources`).
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["monitor*", "detectors*", "alerts*"]), "vigil_runbooks"],
    package_dir={"vigil_runbooks": "runbooks"},
)
