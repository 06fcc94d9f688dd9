import sys

from waon_hf.cli import main

sys.exit(main())
