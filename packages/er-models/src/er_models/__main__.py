from er_models.cli import main

main()
