"""Build the careerbot index: the same as `careerbot build`, taking the same options."""

import sys

from careerbot.cli import main

if __name__ == "__main__":
    sys.exit(main(["build", *sys.argv[1:]]))
