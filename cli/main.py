"""`mmclassify` command-line application (typer)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Classify audio together with its text.", no_args_is_help=True, add_completion=False)


@app.command()
def version() -> None:
    """Print the installed mmclassify version."""
    import mmclassify

    typer.echo(mmclassify.__version__)


def main() -> None:
    app()
