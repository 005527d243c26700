"""`python -m mmclassify` (and so `accelerate launch -m mmclassify`) runs the command-line application."""

from mmclassify_cli.main import main

main()
