import sys

from cli.main import main

if __name__ == "__main__":  # not when a multiprocessing start method imports the main module again
    sys.exit(main())
