"""The `imctl` command tree; each command lives with its kind (writes, reads, operations)."""

from contextvars import ContextVar
from typing import Annotated, Any

import typer

from imctl.settings import ImctlSettings

# The global options of the running invocation, over the environment's settings.
_overrides: ContextVar[dict[str, Any]] = ContextVar("imctl_overrides", default={})

app = typer.Typer(
    name="imctl",
    help="Operate Seller–Creator IM: send commands and wait for their outcomes, read the API as tables, "
    "inspect and replay dead letters, watch consumer lag, rebuild the inbox, create the topics.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def connection(
    token: Annotated[str | None, typer.Option(help="Bearer token for the read API (default: IMCTL_TOKEN).")] = None,
) -> None:
    """Connection settings come from the environment like the services' (KAFKA_BOOTSTRAP_SERVERS, MONGODB_URI,
    IM_PORT_BASE, IM_GROUP_PREFIX, …); see the README's "Operating it"."""
    _overrides.set({"IMCTL_TOKEN": token} if token else {})


def settings() -> ImctlSettings:
    """The settings of the running command: the environment, then the global options."""
    return ImctlSettings(**_overrides.get())


# The commands register themselves on `app` when their modules are imported.
from imctl import operations, reads, writes  # noqa: E402,F401
