from er_eval.cli import main

main()
