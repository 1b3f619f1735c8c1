from lstmtrace.cli import main

main(prog_name="lstmtrace")
