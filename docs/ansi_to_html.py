#!/usr/bin/env python3
"""Turn a terminal capture with SGR colours (`tmux capture-pane -e -p`)
into an HTML page that looks like the terminal, for a screenshot:

    tmux capture-pane -e -p -t alice > capture.txt
    python3 docs/ansi_to_html.py capture.txt 80 > capture.html
    chromium --headless --no-sandbox --hide-scrollbars \
        --force-device-scale-factor=2 --window-size=700,440 \
        --screenshot=docs/client.png capture.html

How docs/client.png was made. Standard library only.
"""

import html
import re
import sys

# A dark theme: the 16 ANSI colours (as xterm's defaults, softened).
PALETTE = [
    "#1d1f21", "#cc6666", "#8abe5a", "#e0b84e", "#6f9fd8", "#b294bb", "#5fb8b0", "#c5c8c6",
    "#666666", "#ff7b7b", "#b5e57a", "#f6d86b", "#9cc4ff", "#d7a8e0", "#8fe3da", "#ffffff",
]
FG, BG = "#d8dad8", "#1d1f21"


def colour_256(n):
    if n < 16:
        return PALETTE[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return "#%02x%02x%02x" % (steps[n // 36], steps[(n // 6) % 6], steps[n % 6])
    v = 8 + (n - 232) * 10
    return "#%02x%02x%02x" % (v, v, v)


class Pen:
    def __init__(self):
        self.reset()

    def reset(self):
        self.fg = self.bg = None
        self.bold = self.dim = self.italic = self.underline = self.reverse = False

    def apply(self, params):
        params = params or [0]
        i = 0
        while i < len(params):
            p = params[i]
            if p == 0:
                self.reset()
            elif p == 1:
                self.bold = True
            elif p == 2:
                self.dim = True
            elif p == 3:
                self.italic = True
            elif p == 4:
                self.underline = True
            elif p == 7:
                self.reverse = True
            elif p == 22:
                self.bold = self.dim = False
            elif p == 23:
                self.italic = False
            elif p == 24:
                self.underline = False
            elif p == 27:
                self.reverse = False
            elif 30 <= p <= 37:
                self.fg = PALETTE[p - 30]
            elif 90 <= p <= 97:
                self.fg = PALETTE[p - 90 + 8]
            elif 40 <= p <= 47:
                self.bg = PALETTE[p - 40]
            elif 100 <= p <= 107:
                self.bg = PALETTE[p - 100 + 8]
            elif p == 39:
                self.fg = None
            elif p == 49:
                self.bg = None
            elif p in (38, 48) and i + 2 < len(params) and params[i + 1] == 5:
                c = colour_256(params[i + 2])
                if p == 38:
                    self.fg = c
                else:
                    self.bg = c
                i += 2
            i += 1

    def style(self):
        fg, bg = self.fg or FG, self.bg or BG
        if self.reverse:
            fg, bg = bg, fg
        css = [f"color:{fg}", f"background:{bg}"]
        if self.bold:
            css.append("font-weight:bold")
        if self.dim:
            css.append("opacity:0.6")
        if self.italic:
            css.append("font-style:italic")
        if self.underline:
            css.append("text-decoration:underline")
        return ";".join(css)


SGR = re.compile(r"\x1b\[([0-9;]*)m")


def line_html(line, width, pen):
    """One row; `pen` comes from the row before: tmux writes an attribute
    only where it changes, so a row may start in the last one's (dim)."""
    out, col, pos = [], 0, 0
    for m in list(SGR.finditer(line)) + [None]:
        text = line[pos:m.start() if m else len(line)]
        if text:
            col += len(text)
            out.append(f'<span style="{pen.style()}">{html.escape(text)}</span>')
        if m:
            pen.apply([int(p) for p in m.group(1).split(";") if p != ""])
            pos = m.end()
    # Pad to the full width so a reverse-video bar reaches the edge.
    if col < width:
        out.append(" " * (width - col))
    return "".join(out)


def main():
    path, width = sys.argv[1], int(sys.argv[2])
    lines = open(path, encoding="utf-8").read().rstrip("\n").split("\n")
    pen = Pen()
    rows = "\n".join(line_html(l, width, pen) for l in lines)
    print(f"""<!doctype html><meta charset="utf-8">
<style>
body {{ margin:0; background:{BG}; }}
pre {{ margin:0; padding:12px 14px; font:14px/17px "DejaVu Sans Mono", monospace;
       color:{FG}; background:{BG}; }}
</style>
<pre>{rows}</pre>""")


if __name__ == "__main__":
    main()
