"""rai-audit's command line: parse argv, call the library, print, return an exit code.

Exit codes: 0 the audit ran and every threshold passed (or none is set); 1 a threshold failed;
2 bad input or a check that could not run. Errors are one line on stderr, never a traceback
(set RAI_AUDIT_DEBUG=1 to see one).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from audit import __version__
from audit.config import json_schema, load_config
from audit.errors import AuditError
from audit.output import prepare_output_dir, write_files
from audit.report import html
from audit.report.format import ci_text, number
from audit.resources import bundled
from audit.results import AuditResult
from audit.runner import run_audit

EXIT_OK, EXIT_GATE_FAILED, EXIT_BAD_INPUT = 0, 1, 2
DEMO_SPECS = ("adult_mlp.yaml", "digits_cnn.yaml")
STARTER_KINDS = ("tabular", "image", "predictions")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rai-audit", description="Audit a trained PyTorch model.")
    parser.add_argument("--version", action="version", version=f"rai-audit {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run an audit spec and write the result and report")
    run.add_argument("spec", type=Path, help="the audit spec (YAML)")
    run.add_argument("--out", type=Path, required=True, help="folder for result.json and report.html")
    run.add_argument("--quiet", action="store_true", help="print nothing on success")

    validate = commands.add_parser("validate", help="check a spec without running it")
    validate.add_argument("spec", type=Path)

    commands.add_parser("schema", help="print the spec's JSON Schema (for editors)")

    init = commands.add_parser("init", help="print a commented starter spec")
    init.add_argument("--kind", choices=STARTER_KINDS, default="tabular")

    demo = commands.add_parser("demo", help="audit the two bundled demo models offline")
    demo.add_argument("--out", type=Path, default=Path("reports/demo"))
    demo.add_argument("--quiet", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except AuditError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still one line, with a way to see more
        if os.environ.get("RAI_AUDIT_DEBUG"):
            raise
        print(f"internal error: {type(exc).__name__}: {exc} (set RAI_AUDIT_DEBUG=1 for details)", file=sys.stderr)
        return EXIT_BAD_INPUT


def entry() -> None:
    sys.exit(main())


def _run(args: argparse.Namespace) -> int:
    code, _ = audit_to_folder(args.spec, args.out, quiet=args.quiet)
    return code


def audit_to_folder(spec: Path, out: Path, *, quiet: bool) -> tuple[int, AuditResult]:
    """Validate, check the output folder is writable, audit, then write every file at once."""
    config = load_config(spec)
    folder = prepare_output_dir(out)
    result = run_audit(config, command=" ".join(shlex.quote(a) for a in ["rai-audit", *sys.argv[1:]]))
    files = {"result.json": result.to_json() + "\n", "report.html": html.render(result)}
    write_files(folder, files)
    if not quiet:
        _print_summary(result, folder)
    for failure in result.failures:
        print(f"check error: {failure.check}: {failure.message}", file=sys.stderr)
    return (EXIT_BAD_INPUT if result.failures else EXIT_OK), result


def _print_summary(result: AuditResult, folder: Path) -> None:
    print(f"{result.name}: {result.data.get('rows_used')} rows audited")
    for metric in ("accuracy", "balanced_accuracy", "roc_auc"):
        for m in result.select("performance", metric):
            if m.group is None and not m.params:
                print(f"  {metric:<18} {number(m.value)}  95% CI {ci_text(m.ci)}")
    print(f"  wrote {folder / 'result.json'} and {folder / 'report.html'}")


def _validate(args: argparse.Namespace) -> int:
    config = load_config(args.spec)
    print(f"{args.spec}: valid ({config.data.kind} data, {config.model.kind} model)")
    return EXIT_OK


def _schema(args: argparse.Namespace) -> int:
    print(json.dumps(json_schema(), indent=2))
    return EXIT_OK


def _init(args: argparse.Namespace) -> int:
    print((bundled("templates") / "starters" / f"{args.kind}.yaml").read_text(encoding="utf-8"), end="")
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    examples = bundled("examples")
    worst = EXIT_OK
    for name in DEMO_SPECS:
        code, _ = audit_to_folder(examples / name, args.out / Path(name).stem, quiet=args.quiet)
        worst = max(worst, code)
    return worst


COMMANDS = {"run": _run, "validate": _validate, "schema": _schema, "init": _init, "demo": _demo}
