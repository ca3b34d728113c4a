"""rai-audit's command line: parse argv, call the library, print, return an exit code.

Exit codes: 0 the audit ran and every threshold passed (or none is set); 1 a threshold failed;
2 bad input or a check that could not run. Errors are one line on stderr, never a traceback
(set RAI_AUDIT_DEBUG=1 to see one).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import shlex
import sys
from pathlib import Path

from typing import TYPE_CHECKING

from audit import __version__, interrupt, terminal
from audit.errors import AuditError, ConfigError

if TYPE_CHECKING:
    from audit.results import AuditResult

# Each command imports what it needs inside its function: torch, captum and shap take seconds
# to load, and `--help`, `--version`, `schema`, `init`, `gate` and `compare` need none of them
# (tests/test_fast_cli.py holds them to that).

EXIT_OK, EXIT_GATE_FAILED, EXIT_BAD_INPUT = 0, 1, 2
DEMO_SPECS = ("adult_mlp.yaml", "digits_cnn.yaml", "dreaddit_transformer.yaml")
STARTER_KINDS = ("tabular", "image", "predictions")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rai-audit", description="Audit a trained PyTorch model.")
    parser.add_argument("--version", action="version", version=f"rai-audit {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run an audit spec and write the result and report")
    run.add_argument("spec", type=Path, help="the audit spec (YAML)")
    run.add_argument("--out", type=Path, required=True, help="folder for result.json and report.html")
    run.add_argument("--quiet", action="store_true", help="print nothing on success, no progress (for CI)")
    run.add_argument("--progress", action="store_true", help="show progress on stderr even when it is not a terminal")
    run.add_argument("--pdf", action="store_true", help="also write report.pdf (needs Chromium)")
    run.add_argument("--force", action="store_true", help="replace --out even if it holds files that are not an audit's")
    run.add_argument("--profile", action="append", default=[], choices=_ProfileNames(), metavar="PROFILE",
                     help="also write a regulatory pack: ll144 (NYC bias audit), eu_ai_act (Annex IV); repeatable")

    validate = commands.add_parser("validate", help="check a spec without running it")
    validate.add_argument("spec", type=Path)
    validate.add_argument("--data", action="store_true",
                          help="also open the data: check its columns, labels and the thresholds' group values")

    gate = commands.add_parser("gate", help="judge a stored result.json again, without recomputing")
    gate.add_argument("result", type=Path, help="a result.json written by `rai-audit run`")
    gate.add_argument("--thresholds", type=Path, help="YAML with 'thresholds' (and optionally 'gate'); default: the spec's")
    gate.add_argument("--out", type=Path, help="folder for junit.xml and summary.md (default: print only; never the audit's folder)")

    compare = commands.add_parser("compare", help="compare two audits and gate on regressions")
    compare.add_argument("baseline", type=Path, help="result folder (or result.json) of the baseline audit")
    compare.add_argument("candidate", type=Path, help="result folder (or result.json) of the candidate audit")
    compare.add_argument("--max-regression", action="append", default=[], metavar="METRIC=AMOUNT",
                         help="how much METRIC may get worse (repeatable); METRIC may carry (param=value) and "
                              "[column=value] as in thresholds")
    compare.add_argument("--spec", type=Path, help="YAML with max_regression (an audit spec works)")
    compare.add_argument("--decision", choices=("point", "interval"), help="default: the spec's gate.decision, else point")
    compare.add_argument("--small-groups", choices=("exclude", "include"), default="exclude",
                         help="judge changes in groups below min_group_size (default: list them, do not judge)")
    compare.add_argument("--out", type=Path, help="folder for compare.json, compare.md, compare.html (default: the candidate's)")

    commands.add_parser("schema", help="print the spec's JSON Schema (for editors)")

    init = commands.add_parser("init", help="print a commented starter spec")
    init.add_argument("--kind", choices=STARTER_KINDS, default="tabular")

    _add_features_command(commands)
    _add_regulation_commands(commands)

    demo = commands.add_parser("demo", help="audit the three bundled demo models offline")
    demo.add_argument("--out", type=Path, default=Path("reports/demo"))
    demo.add_argument("--quiet", action="store_true")
    demo.add_argument("--progress", action="store_true", help="show progress on stderr even when it is not a terminal")
    demo.add_argument("--force", action="store_true", help="replace the output folders even if they hold other files")
    return parser


class _ProfileNames:
    """The profile names, imported only when a --profile is given (the settings load pydantic)."""

    def _names(self) -> tuple[str, ...]:
        from audit.profiles.settings import PROFILE_NAMES

        return tuple(PROFILE_NAMES)

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __iter__(self):
        return iter(self._names())


def _add_features_command(commands) -> None:
    features = commands.add_parser("features", help="write the features list from training data or a fitted transformer")
    source = features.add_mutually_exclusive_group(required=True)
    source.add_argument("--from", dest="source", type=Path, help="the training data (CSV with a header row, or Parquet)")
    source.add_argument("--sklearn", type=Path, help="a fitted ColumnTransformer/OneHotEncoder/StandardScaler saved with joblib")
    features.add_argument("--allow-pickle", action="store_true", help="load --sklearn (a pickle: runs code from the file)")
    features.add_argument("--label", help="the label column, left out")
    features.add_argument("--categorical", nargs="+", default=[], metavar="COLUMN", help="number columns that are categories")
    features.add_argument("--drop", nargs="+", default=[], metavar="COLUMN", help="columns the model does not read")
    features.add_argument("--encoding", choices=("standardize", "minmax", "none"), default="standardize",
                          help="how numeric columns were scaled in training (default: standardize)")
    features.add_argument("--out", type=Path, help="write here (default: print)")


def _add_regulation_commands(commands) -> None:
    counts = commands.add_parser("ll144", help="LL144 bias-audit tables from aggregate counts (CSV)")
    counts.add_argument("counts", type=Path, nargs="+", help="CSV: category column(s), applicants, selected (or scored_above_median)")
    counts.add_argument("--settings", type=Path, required=True, help="YAML with the ll144 settings (or a spec with report.ll144)")
    counts.add_argument("--out", type=Path, required=True, help="folder for ll144.md, ll144.csv and result.json")
    counts.add_argument("--name", default="LL144 bias audit from counts")

    sign = commands.add_parser("sign", help="sign an audit folder (Ed25519 over a SHA-256 manifest)")
    sign.add_argument("folder", type=Path)
    sign.add_argument("--key", type=Path, required=True, help="PEM Ed25519 private key (rai-audit keygen makes one)")
    sign.add_argument("--chain", type=Path, help="the previous signed audit folder of the same model, to link to")

    verify = commands.add_parser("verify", help="verify a signed audit folder; names any changed file")
    verify.add_argument("folder", type=Path)
    verify.add_argument("--pub", type=Path, required=True, help="PEM Ed25519 public key")
    verify.add_argument("--chain", type=Path, help="the previous audit folder this one must be linked to")

    keygen = commands.add_parser("keygen", help="make an Ed25519 key pair for signing: PREFIX and PREFIX.pub")
    keygen.add_argument("--out", type=Path, required=True, help="path of the private key; the public key gets .pub")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = COMMANDS[args.command](args)
        if interrupt.received():  # swallowed by a library on the way: still an interrupted run
            raise KeyboardInterrupt
        return code
    except AuditError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still one line, with a way to see more
        if os.environ.get("RAI_AUDIT_DEBUG"):
            raise
        message = " ".join(str(exc).split())
        message = message if len(message) <= 500 else message[:497] + "..."
        print(f"internal error: {type(exc).__name__}: {message} (set RAI_AUDIT_DEBUG=1 for details)", file=sys.stderr)
        return EXIT_BAD_INPUT


def entry() -> None:
    # user text (names, group values) reaches the terminal: escape control bytes on the way out
    sys.stdout, sys.stderr = terminal.escaping(sys.stdout), terminal.escaping(sys.stderr)
    interrupt.install()
    sys.exit(main())


def _run(args: argparse.Namespace) -> int:
    with _progress(args) as listener:
        code, _ = audit_to_folder(args.spec, args.out, quiet=args.quiet, pdf=args.pdf, profile_names=args.profile,
                                  force=args.force)
    _print_time_line(listener)
    return code


@contextlib.contextmanager
def _progress(args: argparse.Namespace):
    """Progress bars on stderr: on a terminal, or with --progress; never with --quiet."""
    from audit import progress

    shown = not args.quiet and (args.progress or sys.stderr.isatty())
    # the bars redraw with escape sequences, which the escaping stream would print; they carry
    # no user text (step, method and attack names), so they go to the terminal unescaped
    stream = sys.stderr.stream if isinstance(sys.stderr, terminal.EscapingStream) else sys.stderr
    listener = progress.TqdmListener(stream) if shown else None
    with progress.listening(listener):
        yield listener


def _print_time_line(listener) -> None:
    if listener is not None and listener.timings:
        print(listener.time_line(), file=sys.stderr)


def audit_to_folder(spec: Path, out: Path, *, quiet: bool, pdf: bool = False,
                    profile_names: list[str] = (), force: bool = False) -> tuple[int, AuditResult]:
    """Validate, check the output folder is writable, audit, then swap the whole folder in at once."""
    from audit import progress

    with progress.task("loading torch and the audit libraries"):  # seconds on a cold start: show them
        from audit import profiles
        from audit.config import load_config
        from audit.output import prepare_output_dir
        from audit.report import html
        from audit.report import pdf as report_pdf
        from audit.report.files import write_report
        from audit.runner import run_audit

    config = profiles.with_profiles(load_config(spec), list(profile_names))
    folder = prepare_output_dir(out, force=force)
    html.check_templates(Path(config.report.templates) if config.report.templates else None)
    chromium = report_pdf.find_chromium() if pdf or config.report.pdf else None
    result = run_audit(config, command=" ".join(shlex.quote(a) for a in ["rai-audit", *sys.argv[1:]]))
    if interrupt.received():  # never publish the results of an interrupted run
        raise KeyboardInterrupt
    files = write_report(result, folder, templates=config.report.templates, chromium=chromium, force=force,
                         paper=config.report.paper)
    _publish_step_summary(files["summary.md"])
    if not quiet:
        _print_summary(result, folder)
    return _finish(result), result


def _publish_step_summary(summary: str) -> None:
    """Append the summary to GitHub Actions' job summary when running there."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if target:
        with open(target, "a", encoding="utf-8") as stream:
            stream.write(summary + "\n")


def _finish(result: AuditResult) -> int:
    """Report check errors and failed thresholds on stderr; return the exit code (the gate's verdict)."""
    for failure in result.failures:
        print(f"check error: {failure.check}: {failure.message}", file=sys.stderr)
    for finding in result.findings:
        if finding.verdict == "error":
            print(f"gate error: {finding.threshold}: {finding.reason}", file=sys.stderr)
    if result.failures or (result.gate is not None and result.gate.verdict == "error"):
        return EXIT_BAD_INPUT
    if result.gate is not None and not result.gate.passed:
        for finding in result.findings:
            if finding.verdict == "fail" or (finding.verdict == "inconclusive" and result.gate.inconclusive_policy == "fail"):
                print(f"gate {finding.verdict}: {finding.threshold}: {finding.reason}", file=sys.stderr)
        return EXIT_GATE_FAILED
    return EXIT_OK


def _print_summary(result: AuditResult, folder: Path) -> None:
    from audit import profiles
    from audit.report.facts import confidence_label
    from audit.report.format import ci_text, number

    print(f"{result.name}: {result.data.get('rows_used')} rows audited")
    for metric in ("accuracy", "balanced_accuracy", "roc_auc"):
        for m in result.select("performance", metric):
            if m.group is None and not m.params:
                print(f"  {metric:<18} {number(m.value)}  {confidence_label(result)} CI {ci_text(m.ci)}")
    _print_findings(result)
    extra = "".join(f", {name}" for name in profiles.files(result))
    print(f"  wrote result.json, report.html, model_card.md, junit.xml, summary.md{extra} to {folder}")


def _print_findings(result: AuditResult) -> None:
    from audit.report.facts import facts

    for finding in result.findings:
        print(f"  {finding.verdict.upper():<12} {finding.threshold}: {finding.reason}")
    if result.gate is not None and (result.findings or result.gate.verdict == "error"):
        print(f"  gate: {facts(result).word}")


def _validate(args: argparse.Namespace) -> int:
    from audit import thresholds as threshold_rules
    from audit.config import load_config
    from audit.runner import preflight

    from audit.report import html

    config = load_config(args.spec)
    preflight(config)
    html.check_templates(Path(config.report.templates) if config.report.templates else None)
    opened = ""
    if args.data:
        from audit.data import load_data

        data = load_data(config)
        threshold_rules.check_against_data(config.thresholds, data.sensitive)
        opened = f"; data opened: {len(data.sensitive):,} rows, threshold groups found"
    print(f"{args.spec}: valid ({config.data.kind} data, {config.model.kind} model{opened})")
    return EXIT_OK


def _gate(args: argparse.Namespace) -> int:
    """Judge a stored result again; print, and write junit.xml and summary.md only to --out."""
    from audit import checks, gate
    from audit.config import GateSettings, Threshold, load_thresholds
    from audit.output import write_files
    from audit.report.files import gate_files
    from audit.results import read_result

    folder = _gate_out_folder(args.out) if args.out else None
    stored = read_result(args.result)
    thresholds, settings = load_thresholds(args.thresholds) if args.thresholds else (
        [Threshold.model_validate(t) for t in stored.thresholds],
        GateSettings.model_validate(stored.gate_settings),
    )
    gate.check_metric_names(thresholds, checks.metrics())
    findings, outcome = gate.judge(stored.measurements, thresholds, settings, failures=stored.failures)
    result = dataclasses.replace(stored, findings=findings, gate=outcome)
    files = gate_files(result)
    _publish_step_summary(files["summary.md"])
    _print_findings(result)
    if not findings:
        print("no thresholds to judge")
    if folder is not None:
        write_files(folder, files)
        print(f"wrote {', '.join(files)} to {folder}")
    return _finish(result)


def _gate_out_folder(folder: Path) -> Path:
    """`gate` never rewrites an audit's folder: its files must keep agreeing with its result.json."""
    from audit.output import prepare_output_dir

    if (folder / "result.json").exists():
        raise ConfigError(
            f"--out {folder} holds an audit's result.json; rai-audit gate never rewrites an audit's folder",
            hint="choose another folder for the re-judged junit.xml and summary.md",
        )
    return prepare_output_dir(folder, force=True)  # gate adds its two files; it never replaces the folder


def _compare(args: argparse.Namespace) -> int:
    from audit import checks, compare, gate
    from audit.config import RegressionFile, load_regressions
    from audit.output import prepare_output_dir, write_files
    from audit.report import comparison as comparison_report
    from audit.results import read_result

    baseline, candidate = (read_result(_result_path(p)) for p in (args.baseline, args.candidate))
    settings = load_regressions(args.spec) if args.spec else RegressionFile()
    allowances = dict(settings.max_regression) | _allowance_flags(args.max_regression)
    scopes = [compare.allowance_scope(text) for text in allowances]
    gate.check_metric_names(scopes, checks.metrics(), label="max_regression")
    compare.check_allowances(allowances)
    comparison = compare.compare(baseline, candidate, max_regression=allowances,
                                 decision=args.decision or settings.gate.decision,
                                 inconclusive=settings.gate.inconclusive, small_groups=args.small_groups)
    unmatched = [text for text in allowances if text not in {c.allowance for c in comparison.changes}]
    if unmatched:
        raise ConfigError(
            f"max_regression {unmatched[0]!r} matched no measurement the two audits share, so it would judge nothing",
            hint="check the metric's params and group against result.json",
        )
    # compare adds its files beside an audit's; it never replaces the folder
    folder = prepare_output_dir(args.out or _result_path(args.candidate).parent, force=True)
    summary = comparison_report.markdown(comparison)
    write_files(folder, {"compare.json": comparison.to_json() + "\n", "compare.md": summary,
                         "compare.html": comparison_report.html(comparison)})
    print(summary, end="")
    for warning in comparison.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return EXIT_GATE_FAILED if comparison.verdict == "fail" else EXIT_OK


def _result_path(path: Path) -> Path:
    return path / "result.json" if path.is_dir() else path


def _allowance_flags(flags: list[str]) -> dict[str, float]:
    allowances = {}
    for flag in flags:
        metric, sep, amount = flag.rpartition("=")
        try:
            value = float(amount)
        except ValueError:
            value = math.nan
        if not sep or not metric or not (math.isfinite(value) and value >= 0):
            raise ConfigError(f"--max-regression {flag!r} must be METRIC=AMOUNT with AMOUNT >= 0, e.g. accuracy=0.01 "
                              "or 'equalized_odds_difference(sensitive=age)=0.02'")
        allowances[metric.strip()] = value
    return allowances


def _schema(args: argparse.Namespace) -> int:
    from audit.config import json_schema

    print(json.dumps(json_schema(), indent=2))
    return EXIT_OK


def _init(args: argparse.Namespace) -> int:
    from audit.resources import bundled

    starters = bundled("templates") / "starters"
    print((starters / f"{args.kind}.yaml").read_text(encoding="utf-8"), end="")
    # the optional sections, commented, are the same for every kind
    print((starters / "sections.yaml").read_text(encoding="utf-8"), end="")
    return EXIT_OK


def _features(args: argparse.Namespace) -> int:
    from audit import features
    from audit.output import write_files

    if args.sklearn:
        found = features.from_sklearn(features.load_sklearn(args.sklearn, allow_pickle=args.allow_pickle))
    else:
        frame = features.read_training_table(args.source)
        found = features.derive(frame, label=args.label, categorical=tuple(args.categorical), drop=tuple(args.drop),
                                encoding=args.encoding)
    text = features.to_yaml(found, source=(args.sklearn or args.source).name)
    if args.out:
        write_files(args.out.parent, {args.out.name: text})  # one file added beside the others
        print(f"wrote {len(found)} features to {args.out}", file=sys.stderr)
    else:
        print(text, end="")
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from audit.resources import bundled

    examples = bundled("examples")
    worst = EXIT_OK
    for name in DEMO_SPECS:
        with _progress(args) as listener:
            code, _ = audit_to_folder(examples / name, args.out / Path(name).stem, quiet=args.quiet, force=args.force)
        _print_time_line(listener)
        worst = max(worst, code)
    return worst


def _ll144_counts(args: argparse.Namespace) -> int:
    from audit import profiles
    from audit.output import prepare_output_dir, write_audit
    from audit.profiles import ll144

    settings = ll144.load_settings(args.settings)
    folder = prepare_output_dir(args.out)
    command = " ".join(shlex.quote(a) for a in ["rai-audit", *sys.argv[1:]])
    result = ll144.audit_counts(args.counts, settings, name=args.name, command=command)
    write_audit(folder, {"result.json": result.to_json() + "\n"} | profiles.files(result))
    print(f"wrote ll144.md, ll144.csv and result.json to {folder}")
    return EXIT_OK


def _sign(args: argparse.Namespace) -> int:
    from audit import signing

    manifest = signing.sign(args.folder, args.key, previous=args.chain)
    linked = f", chained to {args.chain}" if args.chain else ""
    print(f"signed {len(manifest['files'])} files in {args.folder}{linked}: {signing.MANIFEST}, {signing.SIGNATURE}")
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    from audit import signing

    outcome = signing.verify(args.folder, args.pub, previous=args.chain)
    if outcome.ok:
        print(f"{args.folder}: verified")
        return EXIT_OK
    print(f"{args.folder}: NOT verified: {signing.describe(outcome)}", file=sys.stderr)
    return EXIT_GATE_FAILED


def _keygen(args: argparse.Namespace) -> int:
    from audit import signing

    private, public = signing.generate_keys(args.out)
    print(f"wrote private key {private} (keep it secret) and public key {public}")
    return EXIT_OK


COMMANDS = {
    "run": _run, "validate": _validate, "gate": _gate, "compare": _compare,
    "schema": _schema, "init": _init, "demo": _demo, "features": _features,
    "ll144": _ll144_counts, "sign": _sign, "verify": _verify, "keygen": _keygen,
}
