"""Entry point of the ``loopml`` command.

Each stage of the loop adds its sub-app in :func:`_register`; sub-apps are imported there so
that ``loopml --help`` stays quick. User mistakes (any :class:`loopml.errors.LoopMLError`)
end as one line of error plus one of hint on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import sys

import typer

from loopml.errors import LoopMLError

app = typer.Typer(
    name="loopml",
    help="loopml: data → training → registry → ONNX serving → monitoring → retraining.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


_registered = False


def _register() -> None:
    """Attach every stage's commands to ``app`` (once per process: tests call main often)."""
    global _registered
    if _registered:
        return
    from loopml.cli import data, db, experiments, models, project, runs, serve

    app.add_typer(db.app, name="db")
    app.add_typer(experiments.app, name="experiments")
    app.add_typer(runs.app, name="runs")
    app.add_typer(models.app, name="models")
    app.add_typer(data.app, name="data")
    app.add_typer(serve.app, name="serve")
    for name, command in project.COMMANDS.items():  # run, train, init, schema
        app.command(name)(command)
    _registered = True


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (1 for user errors, 2 for usage errors)."""
    _register()
    try:
        app(args=argv, standalone_mode=False)
    except LoopMLError as exc:
        from loopml.cli.output import print_error

        print_error(exc)
        return 1
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        print("Aborted.", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        return 130
    except typer.TyperException as exc:  # usage errors (Typer vendors click as typer._click)
        show = getattr(exc, "show", None)
        if callable(show):
            show()
            return int(getattr(exc, "exit_code", 2))
        raise
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
