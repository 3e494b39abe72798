import sys

from gigabrain_runtime.cli import main

sys.exit(main())
