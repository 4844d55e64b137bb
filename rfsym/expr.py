"""rfsym's own expression language: the only way text becomes a value.

Numbers, symbols, ``+ - * / // ** ^`` and parentheses; a parenthesised list with commas is a
per-axis tuple. Nothing is ever evaluated as Python: :func:`parse_value` reads tokens and builds
sympy values itself, so ``__import__('os')`` is a syntax error, not a call. Work is bounded by the
text: numbers have at most :data:`MAX_BITS` bits (every intermediate result is checked, not only
``^``), exponents are at most :data:`MAX_EXPONENT`, an expression has at most :data:`MAX_NODES`
nodes and parentheses nest at most :data:`MAX_DEPTH` levels (parsed iteratively: deep nesting
does not recurse). Symbols are positive integers (the index ``i`` nonnegative).

>>> parse_value("2*k + 1")
2*k + 1
>>> parse_value("(3, 5)")
(3, 5)
>>> parse_value("__import__('os')")
Traceback (most recent call last):
...
rfsym.errors.SpecError: column 12: unexpected character "'"
  __import__('os')
             ^
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sympy as sp

from .errors import SpecError
from .symbols import exceeds
from .symbols import symbols as make_symbols

__all__ = ["parse_value", "Lexer", "ValueParser", "SymbolTable", "Ident", "INDEX",
           "MAX_BITS", "MAX_EXPONENT", "MAX_NODES", "MAX_DEPTH"]

#: largest number of bits of any number in an expression (intermediate results included)
MAX_BITS = 256
#: largest exponent of ``^`` / ``**`` (also of a power in a symbolic result: ``(k^64)^2`` is refused)
MAX_EXPONENT = 64
#: largest number of nodes of an expression
MAX_NODES = 2000
#: deepest nesting of parentheses
MAX_DEPTH = 1000
_MAX_DIGITS = 80  # a literal longer than this is above MAX_BITS anyway

#: inside a repeated item, ``i`` is the repetition index 0, 1, ..., n - 1 (``conv(2, d=2^i) x 10``)
INDEX = make_symbols("i", nonnegative=True)


class SymbolTable:
    """One sympy symbol per name (positive integers; ``i`` is :data:`INDEX`) for a whole spec.

    >>> table = SymbolTable()
    >>> table("k") is table("k"), table("k").is_positive
    (True, True)
    """

    def __init__(self):
        self.table = {}

    def __call__(self, name):
        if name not in self.table:
            self.table[name] = INDEX if name == INDEX.name else make_symbols(name)
        return self.table[name]


class Lexer:
    """Tokens of the one-line form, with their columns (1-based).

    >>> [t[:2] for t in Lexer("conv(k, 2)", "").tokens]
    [('id', 'conv'), ('op', '('), ('id', 'k'), ('op', ','), ('num', '2'), ('op', ')'), ('end', '')]
    """

    _TOKEN = re.compile(r"\s*(?:(\d+)|([A-Za-z_][A-Za-z0-9_.]*)|(\*\*|//|->|[-+*/^()\[\],;|=:]))")

    def __init__(self, text, origin):
        self.text = text
        self.origin = origin
        self.tokens = []  # (kind, value, column)
        pos = 0
        while True:
            m = self._TOKEN.match(text, pos)
            if not m or m.end() == pos:
                rest = text[pos:]
                if rest.strip():
                    col = pos + len(rest) - len(rest.lstrip()) + 1
                    self.fail(f"unexpected character {text[col - 1]!r}", col)
                break
            col = m.start() + len(m.group(0)) - len(m.group(0).lstrip()) + 1
            if re.search(rf"\d{{{_MAX_DIGITS + 1}}}", m.group(0)):
                self.fail(f"a number of more than {_MAX_DIGITS} digits (numbers have at most {MAX_BITS} bits)", col)
            if m.group(1):
                self.tokens.append(("num", m.group(1), col))
            elif m.group(2):
                self.tokens.append(("id", m.group(2), col))
            else:
                self.tokens.append(("op", m.group(3), col))
            pos = m.end()
        self.tokens.append(("end", "", len(text) + 1))
        self.i = 0

    def fail(self, message, col=None):
        """Raise a :class:`~rfsym.errors.SpecError` with the text and a caret at ``col``."""
        if col is None:
            col = self.peek()[2]
        text = self.text if len(self.text) <= 200 else self.text[max(0, col - 100):col + 100]
        shift = 0 if len(self.text) <= 200 else max(0, col - 100)
        caret = " " * (col - 1 - shift) + "^"
        raise SpecError(f"{self.origin}column {col}: {message}\n  {text}\n  {caret}")

    def peek(self, ahead=0):
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def next(self):
        tok = self.peek()
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return tok

    def accept(self, op):
        if self.peek()[0] == "op" and self.peek()[1] == op:
            return self.next()
        return None

    def expect(self, op, what):
        if not self.accept(op):
            kind, value, col = self.peek()
            got = "the end of the spec" if kind == "end" else repr(value)
            self.fail(f"expected {op!r} {what}, got {got}", col)


@dataclass(frozen=True)
class Ident:
    """A bare word in a value position: a symbol, or a mode (``same``, ``true``)."""

    name: str


_BINARY = {"+": 1, "-": 1, "*": 2, "/": 2, "//": 2, "**": 4, "^": 4}
_UNARY = 3
_STOP = (",", ")", "|", "]")


class _Paren:
    """An open parenthesis on the operator stack: its column, the operand stack below it, items."""

    __slots__ = ("col", "vals", "ops", "items", "tuple")

    def __init__(self, col, vals, ops):
        self.col, self.vals, self.ops, self.items, self.tuple = col, vals, ops, [], False


class ValueParser:
    """Arithmetic on numbers and symbols, parsed with explicit stacks (no recursion).

    :meth:`value` reads a value (an expression, a bare word, or a parenthesised per-axis tuple);
    :meth:`power` only a power (``2^k``: what may follow ``x`` in a repeat).

    >>> ValueParser(Lexer("2^3^2", ""), SymbolTable()).value()
    512
    """

    def __init__(self, lex: Lexer, syms: SymbolTable, depth=0):
        self.lex = lex
        self.syms = syms
        self.depth = depth

    def where(self):
        return f"{self.lex.origin}column {self.lex.peek()[2]}"

    def value(self):
        """A value: an expression, a bare word, or a parenthesised tuple."""
        return self._parse(power_only=False)

    def expr(self):
        """An expression (a bare word is a symbol)."""
        out = self._parse(power_only=False)
        return self.syms(out.name) if isinstance(out, Ident) else out

    def power(self):
        """A number, symbol or parenthesised value, with an optional ``^ exponent``."""
        return self._parse(power_only=True)

    # the parser: an operand stack and an operator stack per parenthesis level
    def _parse(self, power_only):
        lex = self.lex
        vals, ops = [], []  # ops: (op, precedence, column) ; unary ops as ("neg"/"pos", 3, col)
        parens: list[_Paren] = []
        item_start = True  # a bare word is an Ident here
        signs = 0  # prefix signs in a row (each one a level of nesting)
        while True:
            # ---- an operand (after prefix operators)
            kind, val, col = lex.peek()
            if kind == "op" and val in "+-" and not (power_only and not parens and not ops):
                signs += 1
                if signs > MAX_DEPTH:
                    lex.fail(f"too deeply nested (more than {MAX_DEPTH} signs in a row)", col)
                lex.next()
                ops.append(("neg" if val == "-" else "pos", _UNARY, col))
                item_start = False
                continue
            signs = 0
            if kind == "op" and val == "(":
                if self.depth + len(parens) >= MAX_DEPTH:
                    lex.fail(f"too deeply nested (more than {MAX_DEPTH} levels of parentheses)", col)
                lex.next()
                parens.append(_Paren(col, vals, ops))
                vals, ops = [], []
                item_start = True
                continue
            lex.next()
            if kind == "id" and item_start and not power_only or (kind == "id" and item_start and parens):
                nxt = lex.peek()
                if nxt[0] != "op" or nxt[1] in _STOP:
                    vals.append(Ident(val))
                    item_start = False
                    kind = None
            if kind == "num":
                vals.append(self._checked(sp.Integer(int(val)), col))
            elif kind == "id":
                if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", val):
                    lex.fail(f"{val!r} is not a valid symbol name", col)
                vals.append(self.syms(val))
            elif kind is not None:
                got = "the end of the spec" if kind == "end" else repr(val)
                lex.fail(f"expected a number or a symbol, got {got}", col)
            item_start = False
            # ---- operators after the operand; closing parentheses
            while True:
                kind, val, col = lex.peek()
                if kind == "op" and val in _BINARY:
                    prec = _BINARY[val]
                    if power_only and not parens and prec < 4:
                        return self._finish(vals, ops)
                    lex.next()
                    right = prec == 4
                    while ops and (ops[-1][1] > prec or (ops[-1][1] == prec and not right)):
                        self._reduce(vals, ops)
                    ops.append((val, prec, col))
                    break  # an operand follows
                if parens and kind == "op" and val == ",":
                    lex.next()
                    frame = parens[-1]
                    frame.items.append(self._finish(vals, ops))
                    frame.tuple = True
                    vals, ops = [], []
                    if lex.peek()[:2] == ("op", ")"):
                        continue  # a trailing comma: the ')' closes below
                    item_start = True
                    break
                if parens and kind == "op" and val == ")":
                    lex.next()
                    frame = parens.pop()
                    if vals or ops:
                        frame.items.append(self._finish(vals, ops))
                    if frame.tuple:
                        out = tuple(frame.items)
                    else:
                        out = frame.items[0]
                        if isinstance(out, Ident):
                            out = self.syms(out.name)
                    vals, ops = frame.vals, frame.ops
                    vals.append(out)
                    continue
                if parens:
                    got = "the end of the spec" if kind == "end" else repr(val)
                    lex.fail(f"expected ')' to close '(', got {got}", col)
                return self._finish(vals, ops)

    def _finish(self, vals, ops):
        while ops:
            self._reduce(vals, ops)
        return vals[0]

    def _reduce(self, vals, ops):
        op, _, col = ops.pop()
        if op in ("neg", "pos"):
            x = self._scalar(vals.pop(), col)
            vals.append(-x if op == "neg" else x)
            return
        b = self._scalar(vals.pop(), col)
        a = self._scalar(vals.pop(), col)
        if op == "+":
            out = a + b
        elif op == "-":
            out = a - b
        elif op == "*":
            out = a * b
        elif op == "/":
            out = _divide(a, b, self.lex, col)
        elif op == "//":
            out = sp.floor(_divide(a, b, self.lex, col))
        else:
            out = _power(a, b, self.lex, col)
        vals.append(self._checked(out, col))

    def _scalar(self, v, col):
        if isinstance(v, tuple):
            self.lex.fail("arithmetic on a per-axis tuple", col)
        if isinstance(v, Ident):
            return self.syms(v.name)
        return v

    def _checked(self, value, col):
        """``value`` when its numbers, exponents and size are within bounds, else a located error."""
        if exceeds(value, MAX_NODES):
            self.lex.fail(f"the expression is too large (more than {MAX_NODES} terms)", col)
        for node in sp.preorder_traversal(value):
            if node.is_Rational and max(abs(node.p).bit_length(), node.q.bit_length()) > MAX_BITS:
                self.lex.fail(f"a number of more than {MAX_BITS} bits is not a layer parameter", col)
            if node.is_Pow and node.exp.is_Integer and abs(int(node.exp)) > MAX_EXPONENT:
                self.lex.fail(f"exponent {node.exp} is out of range (0..{MAX_EXPONENT})", col)
        return value


def _power(base, exp, lex, col):
    if exp.is_Integer:
        if not 0 <= int(exp) <= MAX_EXPONENT:
            lex.fail(f"exponent {exp} is out of range (0..{MAX_EXPONENT})", col)
        bits = max((abs(p.p).bit_length() + p.q.bit_length() for p in base.atoms(sp.Rational)), default=0)
        if bits * int(exp) > 2 * MAX_BITS:
            lex.fail(f"{base}^{exp} has more than {MAX_BITS} bits", col)
    elif exp.is_number:
        lex.fail(f"exponent {exp} must be an integer", col)
    if base == 0 and exp.is_number is not True:
        lex.fail("0 to a symbolic power is not a layer parameter", col)
    return base ** exp


def _divide(a, b, lex, col):
    if b == 0:
        lex.fail("division by zero", col)
    return a / b


def parse_value(text: str, symbols: SymbolTable | dict | None = None, origin: str = ""):
    """Parse one value (a number, a symbol, an expression or a per-axis tuple) from text.

    ``symbols`` is a :class:`SymbolTable` or a dict of names to sympy symbols (new positive
    integer symbols otherwise); ``origin`` prefixes error messages. A bare word becomes a symbol.

    Raises:
        SpecError: the text is not a value (the message points at the column).

    >>> parse_value("k//2 + 1")
    floor(k/2) + 1
    >>> parse_value("(2^64)^64")
    Traceback (most recent call last):
    ...
    rfsym.errors.SpecError: column 7: 18446744073709551616^64 has more than 256 bits
      (2^64)^64
            ^
    """
    if not isinstance(text, str):
        raise SpecError(f"{origin}a value must be text, got {type(text).__name__}")
    if isinstance(symbols, SymbolTable):
        syms = symbols
    else:
        syms = SymbolTable()
        syms.table.update({str(k): v for k, v in (symbols or {}).items()})
    lex = Lexer(text, origin)
    if lex.peek()[0] == "end":
        lex.fail("expected a number or an expression, got nothing")
    value = ValueParser(lex, syms).value()
    if lex.peek()[0] != "end":
        lex.fail(f"unexpected {lex.peek()[1]!r} after the value")
    return syms(value.name) if isinstance(value, Ident) else value
