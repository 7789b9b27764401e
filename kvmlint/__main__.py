from kvmlint.cli import main

main()
