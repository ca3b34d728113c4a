"""``data.filter``: a small, safe row-filter language evaluated with vectorised pandas operations.

A spec can come from a pull request, so a filter is untrusted. ``DataFrame.query`` resolves
``@`` names, attributes and calls in the caller's scope, which let a filter run an OS command;
here a filter is parsed with :mod:`ast` (never evaluated as Python) and only this grammar is
accepted::

    expr     := expr 'and' expr | expr 'or' expr | 'not' expr | '(' expr ')'
              | operand (cmp operand)+ | operand ['not'] 'in' '[' literal, ... ']'
              | ('isna' | 'notna') '(' column ')'
    operand  := column | literal | operand ('+' | '-' | '*' | '/' | '//' | '%') operand | '-' operand
    column   := name | `any text in backticks`
    literal  := number | 'text' | "text" | True | False

No library parses exactly this subset safely (pandas' own parser is the unsafe part), so it is
written here, small enough to read whole.
"""

from __future__ import annotations

import ast
import difflib
import io
import operator
import re
import tokenize
from typing import Any

import pandas as pd

from audit.errors import DataError

MAX_FILTER_LENGTH = 2000
HINT = "use column names, literals, comparisons, and/or/not, in [...], isna(column), notna(column) and arithmetic"

COMPARISONS = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt,
    ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
}
ARITHMETIC = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
}
MISSING_TESTS = {"isna": pd.Series.isna, "notna": pd.Series.notna, "isnull": pd.Series.isna, "notnull": pd.Series.notna}
FORBIDDEN_SYMBOLS = {"@": "filters cannot refer to Python names", ".": "filters cannot reach attributes or call methods"}
BACKTICKED = re.compile(r"`([^`]*)`")


def apply_filter(frame: pd.DataFrame, expression: str) -> pd.DataFrame:
    """The rows of ``frame`` for which ``expression`` holds; refuse anything outside the grammar."""
    tree, names = parse_filter(expression)
    try:
        mask = _Evaluator(frame, names, expression).boolean(tree)
    except RecursionError:
        raise _error(expression, "is nested too deeply") from None
    return frame[mask.fillna(False).astype(bool).to_numpy()]


def parse_filter(expression: str) -> tuple[ast.expr, dict[str, str]]:
    """The checked syntax tree and the column each placeholder name stands for."""
    if len(expression) > MAX_FILTER_LENGTH:
        raise _error(expression, f"is {len(expression)} characters long, more than {MAX_FILTER_LENGTH}")
    names: dict[str, str] = {}

    def placeholder(match: re.Match) -> str:
        key = f"__column_{len(names)}__"
        names[key] = match.group(1)
        return key

    text = BACKTICKED.sub(placeholder, expression)
    _refuse_forbidden_tokens(expression, text)
    try:
        tree = ast.parse(text.strip(), mode="eval").body
        _Checker(expression).visit(tree)
    except SyntaxError as exc:
        raise _error(expression, f"is not a valid expression ({exc.msg})") from None
    except (RecursionError, MemoryError, ValueError):
        raise _error(expression, "is nested too deeply") from None
    return tree, names


def _refuse_forbidden_tokens(expression: str, text: str) -> None:
    """'@' (a Python name) and '.' (an attribute) get their own message, before parsing."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        return  # ast.parse reports the syntax error with a better message
    for token in tokens:
        if token.type == tokenize.OP and token.string in FORBIDDEN_SYMBOLS:
            raise _error(expression, f"uses {token.string!r}, which is not allowed ({FORBIDDEN_SYMBOLS[token.string]})")


class _Checker(ast.NodeVisitor):
    """Walk the tree and refuse every node outside the grammar, naming its source text."""

    def __init__(self, expression: str) -> None:
        self.expression = expression

    def generic_visit(self, node: ast.AST) -> None:
        raise _error(self.expression, f"uses {_describe(node)}, which is not allowed in a filter")

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        for value in node.values:
            self.visit(value)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if not isinstance(node.op, (ast.Not, ast.USub, ast.UAdd)):
            self.generic_visit(node)
        self.visit(node.operand)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if type(node.op) not in ARITHMETIC:
            self.generic_visit(node)
        self.visit(node.left)
        self.visit(node.right)

    def visit_Compare(self, node: ast.Compare) -> None:
        self.visit(node.left)
        for op, right in zip(node.ops, node.comparators):
            if isinstance(op, (ast.In, ast.NotIn)):
                self._literal_list(right)
            elif type(op) in COMPARISONS:
                self.visit(right)
            else:
                raise _error(self.expression, f"uses {_describe(op)}, which is not allowed in a filter")

    def _literal_list(self, node: ast.AST) -> None:
        if not isinstance(node, (ast.List, ast.Tuple)):
            raise _error(self.expression, f"'in' needs a list of literals like ['a', 'b']; found {_describe(node)}")
        for element in node.elts:
            if not _is_literal(element):
                raise _error(self.expression, f"'in' lists hold literals only; found {_describe(element)}")

    def visit_Call(self, node: ast.Call) -> None:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in MISSING_TESTS or len(node.args) != 1 or node.keywords or not isinstance(node.args[0], ast.Name):
            raise _error(self.expression, f"calls {_describe(node.func)}; the only calls are isna(column) and notna(column)")

    def visit_Name(self, node: ast.Name) -> None:
        pass

    def visit_Constant(self, node: ast.Constant) -> None:
        if not _is_literal(node):
            self.generic_visit(node)


def _is_literal(node: ast.AST) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return _is_literal(node.operand) and isinstance(node.operand.value, (int, float))
    return isinstance(node, ast.Constant) and isinstance(node.value, (bool, int, float, str)) and node.value is not ...


def _describe(node: ast.AST) -> str:
    try:
        text = ast.unparse(node)
    except Exception:  # an operator node has no source form of its own
        text = ""
    text = text if len(text) <= 40 else text[:37] + "..."
    kind = type(node).__name__
    return f"{text!r} ({kind})" if text else kind


class _Evaluator:
    """Evaluate a checked tree over a frame with vectorised pandas operations."""

    def __init__(self, frame: pd.DataFrame, names: dict[str, str], expression: str) -> None:
        self.frame = frame
        self.names = names
        self.expression = expression

    def boolean(self, node: ast.expr) -> pd.Series:
        value = self.value(node)
        if not isinstance(value, pd.Series) or not _is_boolean(value):
            raise _error(self.expression, "does not give true or false for each row", hint="compare a column, e.g. 'age >= 18'")
        return value

    def value(self, node: ast.expr) -> Any:
        try:
            return self._value(node)
        except DataError:
            raise
        except (TypeError, ValueError, ZeroDivisionError, OverflowError) as exc:
            raise _error(self.expression, f"cannot be evaluated at {_describe(node)}: {str(exc).splitlines()[0][:120]}") from None

    def _value(self, node: ast.expr) -> Any:
        if isinstance(node, ast.BoolOp):
            parts = [self.boolean(v).fillna(False).astype(bool) for v in node.values]
            combine = operator.and_ if isinstance(node.op, ast.And) else operator.or_
            result = parts[0]
            for part in parts[1:]:
                result = combine(result, part)
            return result
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Not):
                return ~self.boolean(node.operand).fillna(False).astype(bool)
            operand = self.value(node.operand)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp):
            return ARITHMETIC[type(node.op)](self.value(node.left), self.value(node.right))
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.Call):
            return MISSING_TESTS[node.func.id](self._column(node.args[0].id))
        if isinstance(node, ast.Name):
            return self._column(node.id)
        return node.value  # a literal (the checker allowed nothing else)

    def _compare(self, node: ast.Compare) -> pd.Series:
        left = self.value(node.left)
        result = None
        for op, right_node in zip(node.ops, node.comparators):
            if isinstance(op, (ast.In, ast.NotIn)):
                values = [ast.literal_eval(e) for e in right_node.elts]
                series = left if isinstance(left, pd.Series) else pd.Series(left, index=self.frame.index)
                part = series.isin(values)
                part = ~part if isinstance(op, ast.NotIn) else part
                right = None
            else:
                right = self.value(right_node)
                part = COMPARISONS[type(op)](left, right)
            result = part if result is None else result & part
            left = right
        if not isinstance(result, pd.Series):
            result = pd.Series(bool(result), index=self.frame.index)
        return result

    def _column(self, name: str) -> pd.Series:
        column = self.names.get(name, name)
        if column in {"True", "False"}:
            return column == "True"
        if column not in self.frame.columns:
            close = difflib.get_close_matches(column, [str(c) for c in self.frame.columns], n=1)
            hint = f"did you mean '{close[0]}'?" if close else "write a column name of the data (in `backticks` if it has spaces)"
            raise _error(self.expression, f"names '{column}', which is not a column of the data", hint=hint)
        return self.frame[column]


def _is_boolean(values: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(values):
        return True
    return values.dtype == object and all(isinstance(v, bool) for v in values.dropna())


def _error(expression: str, problem: str, *, hint: str = HINT) -> DataError:
    shown = expression if len(expression) <= 80 else expression[:77] + "..."
    return DataError(f"data.filter {shown!r} {problem}", hint=hint)
