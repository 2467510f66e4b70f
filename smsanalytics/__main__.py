"""Run the command line: ``python -m smsanalytics``."""

from .cli import main

main()
