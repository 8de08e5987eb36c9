"""``python -m lnc.tools.cli``: the ``lnc`` command."""
import sys

from lnc.tools.cli import main

sys.exit(main())
