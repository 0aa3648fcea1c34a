import os
import sys

from .cli import main

code = main()
if int(os.environ.get("WORLD_SIZE", "1")) > 1:
    # A torchrun process ends here, as nbdetect's forked ranks do: the interpreter's own exit can abort in the
    # distributed backend's threads ("terminate called without an active exception", about 1 run in 10 of a
    # 2-process CPU job, after everything was written), which torchrun reports as the whole job failing.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
sys.exit(code)
