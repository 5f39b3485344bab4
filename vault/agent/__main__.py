"""`python -m vault.agent`: the agent process.  Started by `keyward unlock`, not by hand."""

import sys

from vault.agent.server import main

sys.exit(main())
