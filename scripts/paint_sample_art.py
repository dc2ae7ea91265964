#!/usr/bin/env python3
"""Paint the avatar of the sample card `cards/tobias-marrow.png` with Pillow (no assets needed).

A dusk seascape: the supply boat *Margery Daw* under a rust-red sail, the Skerry Light on its
rock behind her with the lamp just lit. Deterministic: the same picture every run.

    python scripts/paint_sample_art.py OUT.png
    rp-context card convert CARD.yaml --to png --image OUT.png -o cards/tobias-marrow.png
"""

from __future__ import annotations

import math
import random
import sys

from PIL import Image, ImageDraw, ImageFilter

W, H = 400, 600
S = 3  # paint at 3x and scale down for smooth edges


def lerp(a: tuple[int, ...], b: tuple[int, ...], t: float) -> tuple[int, ...]:
    return tuple(int(x + (y - x) * t) for x, y in zip(a, b, strict=True))


def gradient(draw: ImageDraw.ImageDraw, top: int, bottom: int, stops: list[tuple[float, tuple[int, int, int]]]) -> None:
    for y in range(top, bottom):
        t = (y - top) / max(1, bottom - top - 1)
        for (t0, c0), (t1, c1) in zip(stops, stops[1:], strict=False):
            if t0 <= t <= t1:
                draw.line([(0, y), (W * S, y)], fill=lerp(c0, c1, (t - t0) / (t1 - t0)))
                break


def paint() -> Image.Image:
    rng = random.Random(1871)
    w, h = W * S, H * S
    horizon = int(h * 0.52)
    im = Image.new("RGB", (w, h))
    draw = ImageDraw.Draw(im)
    gradient(draw, 0, horizon, [
        (0.0, (24, 30, 64)), (0.45, (78, 66, 112)), (0.8, (214, 118, 86)), (1.0, (244, 176, 110)),
    ])
    gradient(draw, horizon, h, [(0.0, (64, 70, 98)), (0.3, (34, 44, 72)), (1.0, (12, 18, 34))])

    stars = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    sd = ImageDraw.Draw(stars)
    for _ in range(90):
        x, y = rng.uniform(0, w), rng.uniform(0, horizon * 0.45)
        r = rng.choice([1, 1, 2, 3])
        sd.ellipse([x - r, y - r, x + r, y + r], fill=(255, 250, 235, rng.randint(90, 220)))
    im.paste(stars, (0, 0), stars)

    sun = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    ImageDraw.Draw(sun).ellipse([w * 0.12, horizon - 150, w * 0.12 + 300, horizon + 150], fill=(255, 196, 120, 150))
    sun = sun.filter(ImageFilter.GaussianBlur(60))
    im.paste(sun, (0, 0), sun)

    # the rock and the lighthouse, far off to the right
    lx, base = int(w * 0.74), horizon + 6
    draw.polygon([(lx - 170, base + 8), (lx - 90, base - 34), (lx + 40, base - 46), (lx + 150, base - 14), (lx + 200, base + 8)], fill=(26, 24, 36))
    tower = [(lx - 26, base - 40), (lx + 26, base - 40), (lx + 16, base - 300), (lx - 16, base - 300)]
    draw.polygon(tower, fill=(226, 220, 208))
    for band in range(2):
        y0 = base - 120 - band * 110
        draw.polygon([(lx - 23 + band * 3, y0), (lx + 23 - band * 3, y0), (lx + 21 - band * 3, y0 - 40), (lx - 21 + band * 3, y0 - 40)], fill=(150, 40, 36))
    draw.rectangle([lx - 24, base - 318, lx + 24, base - 300], fill=(40, 36, 40))
    draw.rectangle([lx - 16, base - 352, lx + 16, base - 318], fill=(255, 226, 140))
    draw.polygon([(lx - 22, base - 352), (lx + 22, base - 352), (lx, base - 380)], fill=(40, 36, 40))

    beam = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    bd = ImageDraw.Draw(beam)
    bd.polygon([(lx, base - 336), (0, base - 520), (0, base - 380)], fill=(255, 236, 170, 70))
    bd.ellipse([lx - 60, base - 396, lx + 60, base - 276], fill=(255, 230, 150, 120))
    beam = beam.filter(ImageFilter.GaussianBlur(18))
    im.paste(beam, (0, 0), beam)
    draw = ImageDraw.Draw(im)

    # waves: short strokes, lighter near the horizon, with sun glitter
    for _ in range(900):
        y = horizon + int((rng.random() ** 1.8) * (h - horizon))
        depth = (y - horizon) / (h - horizon)
        length = int(20 + depth * 140 * rng.random())
        x = rng.uniform(-40, w)
        shade = lerp((120, 118, 150), (40, 54, 86), depth)
        if x < w * 0.55 and depth < 0.35 and rng.random() < 0.5:
            shade = lerp((250, 190, 130), shade, depth * 2.5)
        draw.line([(x, y), (x + length, y + rng.uniform(-2, 2))], fill=shade, width=max(2, int(2 + depth * 6)))

    # the Margery Daw
    bx, by = int(w * 0.42), int(h * 0.74)
    hull = [(bx - 300, by - 40), (bx + 330, by - 60), (bx + 250, by + 70), (bx - 220, by + 70)]
    draw.polygon(hull, fill=(52, 34, 28))
    draw.line([(bx - 300, by - 40), (bx + 330, by - 60)], fill=(150, 120, 70), width=10)
    draw.line([(bx - 260, by + 10), (bx + 290, by - 8)], fill=(90, 62, 40), width=6)
    mast_x = bx + 10
    draw.line([(mast_x, by - 50), (mast_x - 8, by - 640)], fill=(40, 28, 24), width=14)
    draw.line([(mast_x - 8, by - 600), (mast_x + 260, by - 90)], fill=(40, 28, 24), width=6)
    sail = [(mast_x - 4, by - 610), (mast_x + 250, by - 110), (mast_x + 6, by - 80)]
    draw.polygon(sail, fill=(168, 62, 38))
    for i in range(1, 5):
        t = i / 5
        a = lerp((mast_x - 4, by - 610), (mast_x + 6, by - 80), t)
        b = lerp((mast_x + 250, by - 110), (mast_x + 6, by - 80), t * 0.2)
        draw.line([a, b], fill=(140, 48, 30), width=4)
    jib = [(mast_x - 12, by - 560), (mast_x - 250, by - 60), (mast_x - 20, by - 70)]
    draw.polygon(jib, fill=(204, 174, 132))

    glow = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    ImageDraw.Draw(glow).ellipse([bx - 250, by - 130, bx - 150, by - 30], fill=(255, 200, 110, 200))
    glow = glow.filter(ImageFilter.GaussianBlur(24))
    im.paste(glow, (0, 0), glow)
    draw = ImageDraw.Draw(im)
    draw.rectangle([bx - 212, by - 96, bx - 188, by - 62], fill=(255, 222, 150))

    # reflection of the lantern and the hull's shadow on the water
    for i in range(14):
        y = by + 80 + i * 16
        half = 30 + rng.uniform(0, 40)
        draw.line([(bx - 200 - half, y), (bx - 200 + half, y)], fill=(210, 160, 100), width=5)

    im = im.resize((W, H), Image.LANCZOS)
    vignette = Image.new("L", (W, H), 255)
    vd = ImageDraw.Draw(vignette)
    for i in range(40):
        vd.rectangle([i, i, W - 1 - i, H - 1 - i], outline=int(110 + 145 * math.sin(i / 40 * math.pi / 2)))
    dark = Image.new("RGB", (W, H), (8, 10, 20))
    return Image.composite(im, dark, vignette)


def main() -> int:
    out = sys.argv[1] if len(sys.argv) > 1 else "tobias-marrow-art.png"
    paint().save(out, format="PNG", optimize=True)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
