import sys

from vault.cli.main import main

sys.exit(main())
