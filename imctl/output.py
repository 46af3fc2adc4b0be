"""How every command ends: one JSON document (--json) or tables on stdout,
progress on stderr, and a one-line reason with a non-zero exit code instead
of a traceback."""

import asyncio
import functools
import json
from collections.abc import Callable
from typing import Annotated, Any

import typer
from aiokafka.errors import KafkaConnectionError, KafkaError
from pydantic import BaseModel, ValidationError
from rich.console import Console, RenderableType

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")]

BAD_INPUT = 2


class Refused(Exception):
    """Stop with this reason (exit code 1, or BAD_INPUT)."""

    def __init__(self, reason: str, code: int = 1) -> None:
        super().__init__(reason)
        self.code = code


class Outcome(Exception):
    """A result that is printed like any other but ends with a non-zero code (a rejected send)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def stdout() -> Console:
    return Console(soft_wrap=False)


def stderr() -> Console:
    return Console(stderr=True)


def jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    return value


def show(json_output: bool, document: dict[str, Any], *renderables: RenderableType) -> None:
    """The result of a command: `document` as JSON, or the renderables for people."""
    if json_output:
        typer.echo(json.dumps(jsonable(document), default=str, ensure_ascii=False))
    else:
        console = stdout()
        for renderable in renderables:
            console.print(renderable)


def reason_of(exc: Exception) -> tuple[str, int]:
    """One line for the operator and the exit code."""
    match exc:
        case Refused():
            return str(exc), exc.code
        case ValidationError():
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "input"
            more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
            return f"invalid {where}: {first['msg']}{more}", BAD_INPUT
        case KafkaConnectionError():
            return f"cannot reach Kafka: {exc}", 1
        case KafkaError():
            return f"Kafka: {type(exc).__name__}: {exc}", 1
        case TimeoutError():
            return f"timed out: {exc}" if str(exc) else "timed out", 1
        case _:
            return f"{type(exc).__name__}: {exc}", 1


def command(group: typer.Typer, name: str | None = None, **options: Any) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Registers a command whose failures end in one line (and {"error": …} with --json)."""

    def register(function: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> None:
            try:
                function(*args, **kwargs)
            except Outcome as outcome:
                raise typer.Exit(outcome.code) from None
            except (typer.Exit, typer.Abort):
                raise
            except KeyboardInterrupt:
                stderr().print("imctl: interrupted", markup=False, highlight=False)
                raise typer.Exit(130) from None
            except (Exception, asyncio.CancelledError) as exc:  # noqa: BLE001 - one line, never a traceback
                reason, code = reason_of(exc)
                if kwargs.get("json_output"):
                    typer.echo(json.dumps({"error": reason}))
                stderr().print(f"imctl: {reason}", markup=False, highlight=False, soft_wrap=True)
                raise typer.Exit(code) from None

        group.command(name, **options)(run)
        return function

    return register
