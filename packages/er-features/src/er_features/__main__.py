from er_features.cli import main

main()
