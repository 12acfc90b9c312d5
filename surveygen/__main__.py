from surveygen.cli import main

main()
