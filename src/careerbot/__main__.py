"""`python -m careerbot` is the careerbot command."""

import sys

from careerbot.cli import main

sys.exit(main())
