from rlsweep.cli import run_main

run_main()
