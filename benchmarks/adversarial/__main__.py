import sys

from benchmarks.adversarial.run import main

sys.exit(main(sys.argv[1:]))
