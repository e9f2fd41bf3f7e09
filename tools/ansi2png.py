#!/usr/bin/python3
"""Renders terminal text with ANSI colours (tmux capture-pane -e -p) to a PNG, so the
README can show what `ctbpf watch` looks like. Needs Debian's python3-pil and
fonts-dejavu-core. Usage: ansi2png.py IN.txt OUT.png"""
import re
import sys

from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf"
PALETTE = {30: (40, 40, 40), 31: (220, 50, 47), 32: (133, 153, 0), 33: (181, 137, 0),
           34: (38, 139, 210), 35: (211, 54, 130), 36: (42, 161, 152), 37: (238, 232, 213)}
FG, BG = (238, 238, 238), (20, 22, 26)


def parse(line):
    """Yields (text, fg, bg, bold) runs."""
    fg, bg, bold, rev, out = FG, BG, False, False, []
    for part in re.split(r"(\x1b\[[0-9;]*m)", line):
        m = re.fullmatch(r"\x1b\[([0-9;]*)m", part)
        if not m:
            if part:
                out.append((part, bg, fg, bold) if rev else (part, fg, bg, bold))
            continue
        for code in [int(c) if c else 0 for c in m.group(1).split(";")]:
            if code == 0:
                fg, bg, bold, rev = FG, BG, False, False
            elif code == 1:
                bold = True
            elif code == 7:
                rev = True
            elif code == 27:
                rev = False
            elif code == 39:
                fg = FG
            elif code == 49:
                bg = BG
            elif code in PALETTE:
                fg = PALETTE[code]
            elif code - 10 in PALETTE:
                bg = PALETTE[code - 10]
    return out


def main():
    lines = open(sys.argv[1], encoding="utf-8").read().rstrip("\n").split("\n")
    font, bold = ImageFont.truetype(FONT, 15), ImageFont.truetype(BOLD, 15)
    cw, ch = font.getbbox("M")[2], 19
    cols = max(len(re.sub(r"\x1b\[[0-9;]*m", "", l)) for l in lines)
    img = Image.new("RGB", (cols * cw + 20, len(lines) * ch + 20), BG)
    d = ImageDraw.Draw(img)
    for y, line in enumerate(lines):
        x = 0
        for text, fg, bg, b in parse(line):
            px, py = 10 + x * cw, 10 + y * ch
            d.rectangle([px, py, px + len(text) * cw, py + ch], fill=bg)
            d.text((px, py), text, font=bold if b else font, fill=fg)
            x += len(text)
    img.save(sys.argv[2], optimize=True)


if __name__ == "__main__":
    main()
