"""The ``rfsym`` command line.

``rfsym demo`` prints the derivation of the notes' stacked 3×3 convolutions.
"""

from __future__ import annotations

import argparse
import sys

import sympy as sp

from .errors import RfsymError

__all__ = ["main"]


def _demo(args) -> int:
    from . import Conv, Sequential, analyze, symbols

    print("rfsym demo: stacked 3x3 convolutions (stride 1, padding 1), as in the receptive-field notes\n")
    stack = Sequential(*[Conv(3, padding=1, name=f"conv{i + 1}") for i in range(4)])
    result = analyze(stack, input_size=5)
    print("Recurrence (Araujo et al., Distill 2019):  r_l = r_{l-1} + (k_l - 1) * j_{l-1},  j_l = j_{l-1} * s_l")
    prev = 1
    for layer in result.layers:
        print(f"  {layer.name}: R = {prev} + (3 - 1) = {layer.rf}   jump = {layer.jump}   start = {layer.start}"
              f"   out_size(5) = {layer.out_size}")
        prev = layer.rf
    k, s, C, L = symbols("k s C L")
    ks = symbols("k1:5")
    ss = symbols("s1:5")
    general = analyze(Sequential(*[Conv(ki, stride=si) for ki, si in zip(ks, ss)]))
    print("\nGeneral formula, four layers with symbolic kernels and strides:")
    print(f"  R_4 = {sp.factor_terms(general.rf)}")
    one = analyze(Conv(7, in_channels=C, out_channels=C, bias=False))
    three = analyze(Sequential(*[Conv(3, in_channels=C, out_channels=C, bias=False)] * 3))
    print("\nOne 7x7 conv vs three 3x3 convs (C channels, no bias):")
    print(f"  receptive field: {one.rf} vs {three.rf}")
    print(f"  weights:         {one.params} vs {three.params}  (ratio {sp.simplify(three.params / one.params)})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rfsym", description="Derive the arithmetic of convolutional networks.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="the notes' stacked 3x3 example, derived")
    demo.set_defaults(func=_demo)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except RfsymError as err:
        print(f"rfsym: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
