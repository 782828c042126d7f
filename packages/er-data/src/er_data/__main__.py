from er_data.cli import main

main()
