import sys

from tinyschool.cli import main

sys.exit(main())
