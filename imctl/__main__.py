"""`python -m imctl …` and the `imctl` console script."""

import logging
import sys

from imctl.app import app


def main() -> None:
    # Library warnings (aiokafka retries, …) go to stderr; stdout holds only imctl's output.
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    app(prog_name="imctl")


if __name__ == "__main__":
    main()
