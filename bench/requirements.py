"""Prints the pins of pyproject's `bench` extra that are not installed as
pinned (what `make bench` then installs), one per line."""

import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def missing() -> list[str]:
    pins = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]["bench"]
    absent = []
    for pin in pins:
        name, _, wanted = pin.partition("==")
        try:
            if version(name) != wanted:
                absent.append(pin)
        except PackageNotFoundError:
            absent.append(pin)
    return absent


if __name__ == "__main__":
    print("\n".join(missing()))
