"""``praxis serve``: the web app, with the outbox worker inside on the embedded default."""

from __future__ import annotations

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--no-worker", is_flag=True, help="Do not run the outbox worker in this process.")
def serve(host: str, port: int, no_worker: bool) -> None:
    """Serve the web app and API (OpenAPI at /docs)."""
    import uvicorn

    from core.api.app import create_app
    from core.cli.common import load

    praxis = load()
    if praxis.settings.is_sqlite:
        click.echo(f"Embedded database: {praxis.settings.url.split('///', 1)[1]}")
    app = create_app(praxis, start_worker=False if no_worker else None)
    click.echo(f"Praxis at http://{host}:{port}  (API docs at /docs)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
