"""The ``mlk`` command line. Importing it loads argparse and nothing heavy."""
