"""`python -m imctl …` and the `imctl` console script."""

import logging
import os
import sys

from imctl.app import app


def main() -> None:
    # Libraries' own logs (aiokafka's connection errors, …) would repeat imctl's one-line
    # reason; IMCTL_LOG_LEVEL=DEBUG shows them, on stderr.
    logging.basicConfig(level=os.environ.get("IMCTL_LOG_LEVEL", "CRITICAL").upper(), stream=sys.stderr)
    app(prog_name="imctl")


if __name__ == "__main__":
    main()
