"""python -m autograder VERB ...: the instructor's command line (autograder.cli)."""

from autograder.cli import main

if __name__ == "__main__":
    main()
