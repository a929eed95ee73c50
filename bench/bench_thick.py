"""Digits drawn with thick markers: strokes of 20-35% of the digit's height (big digits with a fat
marker, small digits with an ordinary pen), drawn by the stroke generator and rendered from the
handwriting fonts of Debian's font packages (fonts-comic-neue, fonts-dkg-handwriting, fonts-breip,
fonts-bwht, fonts-femkeklaver, fonts-humor-sans; any other installed .ttf/.otf counts too). The
baseline, in the same run, is the same digits with a thin pen (~8% of the height).

    .venv/bin/python bench/bench_thick.py [--model digits] [--compare FOLDER] [--quick]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import Image, ImageDraw, ImageFont  # noqa: E402

from app.settings import get_settings  # noqa: E402
from bench.common import add_quick, draw_digit  # noqa: E402
from engine.inference import classify  # noqa: E402
from engine.stores.store import ModelRegistry  # noqa: E402

HANDWRITING = ("comic-neue", "fifthhorseman", "breip", "bwht", "femkeklaver", "humor-sans")
THICK, THIN = (0.20, 0.27, 0.35), (0.08,)


def fonts() -> list[Path]:
    found = [p for folder in ("/usr/share/fonts/truetype", "/usr/share/fonts/opentype")
             for p in sorted(Path(folder).glob("*/*")) if p.suffix in (".ttf", ".otf")]
    return [p for p in found if any(name in str(p) for name in HANDWRITING)]


DIGITS = "0123456789"


def strokes(pens) -> list[tuple[str, str, Image.Image]]:
    """(style, digit, image): big (224 px tall) and small (80 px) digits, three slants."""
    out = []
    for digit in DIGITS:
        for height, box in ((224, (0.2, 0.1, 0.8, 0.9)), (80, (0.4, 0.35, 0.6, 0.64))):
            for slant in (-0.15, 0.0, 0.15):
                for pen in pens:
                    out.append(("strokes", digit, draw_digit(digit, width=max(2, round(pen * height)), box=box, slant=slant)))
    return out


def typed(pens, paths: list[Path]) -> list[tuple[str, str, Image.Image]]:
    """(style, digit, image): each font's digits at two sizes, outlined so the pen is `pen` of the height."""
    out = []
    for path in paths:
        for size in (200, 90):
            font = ImageFont.truetype(str(path), size)
            for digit in DIGITS:
                left, top, right, bottom = font.getbbox(digit)
                height = max(bottom - top, 1)
                for pen in pens:
                    outline = max(0, round((pen * height - 0.08 * height) / 2))  # added around the font's own stroke
                    img = Image.new("L", (280, 280), 255)
                    ImageDraw.Draw(img).text((140, 140), digit, font=font, fill=0, anchor="mm",
                                             stroke_width=outline, stroke_fill=0)
                    out.append((f"font:{path.stem}", digit, img))
    return out


def accuracy(model, drawings) -> tuple[float, dict[str, float], list[tuple[str, str, str]]]:
    by_style: dict[str, list[bool]] = {}
    wrong = []
    for style, digit, img in drawings:
        got = classify(model, img).prediction
        by_style.setdefault(style.split(":")[0], []).append(got == digit)
        if got != digit:
            wrong.append((style, digit, got))
    total = [ok for oks in by_style.values() for ok in oks]
    return sum(total) / len(total), {s: sum(v) / len(v) for s, v in by_style.items()}, wrong


def report(label: str, model, thick, thin) -> None:
    thick_acc, thick_styles, wrong = accuracy(model, thick)
    thin_acc, thin_styles, _ = accuracy(model, thin)
    print(f"\n{label}")
    print(f"{'drawings':>28} {'count':>6} {'accuracy':>9}  by style")
    print(f"{'thick (pen 20-35%)':>28} {len(thick):6} {thick_acc:9.3f}  " + ", ".join(f"{s} {a:.3f}" for s, a in thick_styles.items()))
    print(f"{'baseline: thin (pen 8%)':>28} {len(thin):6} {thin_acc:9.3f}  " + ", ".join(f"{s} {a:.3f}" for s, a in thin_styles.items()))
    print(f"ratio thick / thin: {thick_acc / thin_acc:.3f} (goal: thick >= 0.98)")
    confusions: dict[str, int] = {}
    for _, digit, got in wrong:
        confusions[f"{digit}->{got}"] = confusions.get(f"{digit}->{got}", 0) + 1
    print("most misread:", ", ".join(f"{k} x{v}" for k, v in sorted(confusions.items(), key=lambda kv: -kv[1])[:10]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="digits")
    p.add_argument("--compare", type=Path, action="append", default=[],
                   help="also read the drawings with the model of this id in this folder (a retrained candidate)")
    add_quick(p)
    args = p.parse_args()
    paths = fonts()
    if args.quick:  # two digits, one font
        global DIGITS
        DIGITS, paths = "17", paths[:1]
    t = time.perf_counter()
    thick = strokes(THICK) + typed(THICK, paths)
    thin = strokes(THIN) + typed(THIN, paths)
    print(f"{len(paths)} handwriting fonts; drawings made in {time.perf_counter() - t:.1f} s")
    report(f"model {args.model} (shipped)", ModelRegistry([get_settings().models_dir]).get(args.model), thick, thin)
    for folder in args.compare:
        report(f"model {args.model} from {folder}", ModelRegistry([folder]).get(args.model), thick, thin)

if __name__ == "__main__":
    main()
