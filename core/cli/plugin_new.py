"""``praxis plugin new``: generate a plugin folder that installs and passes its own and the contract tests.

Templates live in ``plugin_sdk/templates``: ``_common/`` plus one folder per kind, files ending ``.tmpl``
rendered with Jinja2 (``StrictUndefined``: a typo in a template fails loudly), ``__package__`` in a path
replaced by the package name. Jinja2 is already a dependency, so no cookiecutter is needed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import click
from jinja2 import Environment, StrictUndefined

from plugin_sdk.manifest import PLUGIN_NAME

TEMPLATES = Path(__file__).resolve().parents[2] / "plugin_sdk" / "templates"
PACKAGE_DIR = "__package__"


@dataclass(frozen=True)
class Kind:
    title: str
    summary: str


KINDS: dict[str, Kind] = {
    "sms": Kind("SMS vendor", "sends text messages to patients through an SMS API"),
    "signing": Kind("signing provider", "signs clinical records with a key held in the clinic's settings"),
    "lab": Kind("lab connector", "sends lab orders to an external laboratory and fetches the results"),
    "country": Kind("country plugin", "a national patient identifier with its check digit and rules"),
}


class PluginNewError(Exception):
    """The plugin cannot be generated; the message says why and what to do."""


def check_name(name: str) -> str:
    if not PLUGIN_NAME.match(name):
        hint = name.lower().replace("-", "_").replace(" ", "_")
        suggestion = f" (try {hint!r})" if PLUGIN_NAME.match(hint) else ""
        raise PluginNewError(
            f"invalid plugin name {name!r}: use 2-41 characters, lower-case letters, digits and '_', "
            f"starting with a letter{suggestion}"
        )
    return name


def template_values(name: str, kind: str, country: str) -> dict[str, str]:
    words = name.split("_")
    return {
        "name": name,
        "package": f"praxis_{name}",
        "dist": name.replace("_", "-"),
        "title": " ".join(w.capitalize() for w in words if w),
        "cls": "".join(w.capitalize() for w in words if w),
        "kind": kind,
        "kind_title": KINDS[kind].title,
        "summary": KINDS[kind].summary,
        "country": country,
        "country_lower": country.lower(),
    }


def render_plugin(name: str, kind: str, output: Path | None = None, *, country: str = "XX") -> Path:
    """Render the templates of ``kind`` into ``output/name`` (default ``plugins/name``); returns the folder.

    Nothing is written unless everything renders: the files go to a temporary folder next to the target,
    which is then renamed into place.
    """
    check_name(name)
    if kind not in KINDS:
        raise PluginNewError(f"unknown kind {kind!r}; choose one of: {', '.join(KINDS)}")
    country = country.upper()
    if len(country) != 2 or not country.isalpha() or not country.isascii():
        raise PluginNewError(f"--country must be an ISO 3166 alpha-2 code such as HU, got {country!r}")
    parent = (output if output is not None else Path("plugins")).resolve()
    target = parent / name
    if target.exists():
        raise PluginNewError(f"{target} already exists; choose another name or --output, or remove it first")
    if parent.exists() and not parent.is_dir():
        raise PluginNewError(f"--output {parent} is a file, not a folder")
    values = template_values(name, kind, country)
    env = Environment(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)
    files: dict[Path, Path] = {}
    for folder in (TEMPLATES / "_common", TEMPLATES / kind):
        for source in sorted(folder.rglob("*")):
            if source.is_file() and "__pycache__" not in source.parts:
                files[source.relative_to(folder)] = source
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=parent))
    try:
        for relative, source in sorted(files.items()):
            parts = [values["package"] if p == PACKAGE_DIR else p for p in relative.parts]
            destination = staging.joinpath(*parts)
            destination.parent.mkdir(parents=True, exist_ok=True)
            if source.suffix == ".tmpl":
                text = env.from_string(source.read_text(encoding="utf-8")).render(**values)
                destination.with_suffix("").write_text(text, encoding="utf-8")
            else:
                shutil.copyfile(source, destination)
        os.rename(staging, target)  # fails if someone created the target meanwhile: never overwrite
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


@click.group("plugin")
def plugin() -> None:
    """Write your own plugin."""


@plugin.command("new")
@click.argument("name")
@click.option("--kind", required=True, type=click.Choice(list(KINDS)), help="What the plugin connects to.")
@click.option("--output", type=click.Path(path_type=Path), default=None,
              help="Folder to create the plugin in (default: ./plugins).")
@click.option("--country", default="XX", show_default=True,
              help="ISO country code the plugin is for (country kind; XX is a placeholder).")
def new(name: str, kind: str, output: Path | None, country: str) -> None:
    """Generate plugin NAME: package praxis_NAME, a fake vendor, unit and contract tests, a README."""
    try:
        target = render_plugin(name, kind, output, country=country)
    except PluginNewError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Created {KINDS[kind].title} plugin {name!r} in {target}")
    click.echo("Next:")
    click.echo(f"  pip install -e {target}        # registers the praxis.plugins entry point")
    click.echo(f"  pytest {target}                # its unit tests and the {kind} contract tests")
    click.echo(f"  praxis plugins enable {name} --clinic <id>")
