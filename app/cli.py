"""The `panels` command line: serve, migrate, create-admin, seed-demo, audit tools."""

from __future__ import annotations

from typing import Annotated

import typer
from alembic import command

from app.config import ConfigurationError, Settings
from app.migrations_state import alembic_config

app = typer.Typer(help="Safeguarding Panels service", no_args_is_help=True)


def _settings() -> Settings:
    try:
        return Settings()
    except ConfigurationError as exc:
        typer.secho(f"Refusing to start: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
) -> None:
    """Serve the API with uvicorn (uvloop and httptools when installed)."""
    import uvicorn

    _settings()
    uvicorn.run(
        "app.asgi:app",
        host=host,
        port=port,
        workers=workers,
        access_log=False,  # the app logs each request without query strings
        proxy_headers=True,
        server_header=False,
        log_config=None,  # keep the JSON logging configured by the app
    )


@app.command()
def migrate() -> None:
    """Upgrade the database to the latest schema."""
    settings = _settings()
    config = alembic_config(settings.database_url)
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")
    typer.echo("database is at the latest migration")


@app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="The admin's email (their username)")],
    password: Annotated[
        str, typer.Option(help="At least 12 characters", prompt=True, hide_input=True)
    ],
    full_name: Annotated[str, typer.Option(help="Display name")] = "Partnership administrator",
    agency: Annotated[str, typer.Option(help="The admin's agency (created if missing)")] = (
        "Community Safety Partnership"
    ),
) -> None:
    """Create an administrator, and enrol the second factor the role requires."""
    from app.bootstrap import AdminExists, create_admin_user
    from app.errors import DomainError

    settings = _settings()
    try:
        result = create_admin_user(settings, email, password, full_name, agency)
    except (DomainError, AdminExists) as exc:
        typer.secho(f"Not created: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"admin {result.email} created in agency '{agency}'")
    if result.totp_secret:
        typer.echo("A second factor is required for admins. Add this to an authenticator app:")
        typer.echo(f"  secret:      {result.totp_secret}")
        typer.echo(f"  otpauth URI: {result.otpauth_uri}")
        typer.echo("Then sign in with grant_type=password, username, password and otp=<code>.")


@app.command("seed-demo")
def seed_demo() -> None:
    """Load the demo partnership (development only; running it again changes nothing)."""
    from app.seed import seed

    settings = _settings()
    if settings.env.value == "production":
        typer.secho("seed-demo refuses to run in production", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    for line in seed(settings):
        typer.echo(line)


@app.command("audit-seal")
def audit_seal() -> None:
    """Seal every queued audit event into the chain now."""
    from app.db import Database
    from app.main import seal_all
    from app.services.audit_chain import chain_key

    settings = _settings()
    db = Database.from_settings(settings)
    sealed = seal_all(db, chain_key(settings.secret_key, settings.audit_key), 5000)
    typer.echo(f"sealed {sealed} events")


@app.command("audit-verify")
def audit_verify() -> None:
    """Verify the audit chain from genesis; exit 1 if it is broken."""
    from app.db import Database
    from app.services.audit_chain import chain_key, verify_chain

    settings = _settings()
    db = Database.from_settings(settings)
    with db.session() as session:
        result = verify_chain(session, chain_key(settings.secret_key, settings.audit_key))
    typer.echo(result.model_dump_json(indent=2))
    raise typer.Exit(0 if result.ok else 1)
