from er_train.cli import main

main()
