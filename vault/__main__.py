from vault.cli.main import run

run()
