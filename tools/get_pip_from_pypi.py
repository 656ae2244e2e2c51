"""Stands in for the get-pip.py bootstrap script ansible-test downloads.

ansible-test creates an empty virtual environment for each sanity test and runs
``python get-pip.py --disable-pip-version-check pip==X --no-setuptools --no-wheel`` in it, with a
script it fetches from ci-files.testing.ansible.com and caches as
``~/.ansible/test/cache/get_pip_X.py``. tools/ansible-test.sh puts this file at that path, so a
machine that reaches only the package registries can run the tests: pip comes from the
interpreter's own ensurepip, then the requested pip version from PyPI.
"""

from __future__ import annotations

import subprocess
import sys


def main() -> None:
    args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", *args])


if __name__ == "__main__":
    main()
