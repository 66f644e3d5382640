"""Draws the Workbench app icon: a small feed-forward network (3-4-2 nodes, every edge drawn)
in white on a rounded blue square.

Run `python resources/icons/make_icons.py` to regenerate the committed files: one SVG and PNGs
at the sizes desktops ask for. The PNGs are drawn 4x larger and scaled down for smooth edges;
the geometry is shared, so the SVG and the PNGs match.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
SUPERSAMPLE = 4
BACKGROUND = "#2f6fde"  # the accent colour of workbench.gui.widgets.style
EDGE = (255, 255, 255, 150)
NODE = "#ffffff"
OUTPUT_NODE = "#ffd166"
LAYERS = (3, 4, 2)  # nodes per layer, left to right


def layout(size: float) -> tuple[list[list[tuple[float, float]]], float]:
    """Node centres per layer and the node radius, for an icon `size` units wide."""
    margin_x, margin_y = size * 0.24, size * 0.2
    columns = len(LAYERS)
    layers = []
    for i, count in enumerate(LAYERS):
        x = margin_x + (size - 2 * margin_x) * i / (columns - 1)
        span = (size - 2 * margin_y) * (count - 1) / (max(LAYERS) - 1)
        top = (size - span) / 2
        layers.append([(x, top + span * j / max(1, count - 1)) for j in range(count)])
    return layers, size * 0.062


def draw_png(size: int) -> Image.Image:
    big = size * SUPERSAMPLE
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    inset = big * 0.03
    draw.rounded_rectangle((inset, inset, big - inset, big - inset), radius=big * 0.2,
                           fill=BACKGROUND)
    layers, radius = layout(big)
    width = max(1, round(big * 0.016))
    edges = Image.new("RGBA", image.size, (0, 0, 0, 0))
    edge_draw = ImageDraw.Draw(edges)
    for left, right in zip(layers, layers[1:], strict=False):
        for a in left:
            for b in right:
                edge_draw.line((a, b), fill=EDGE, width=width)
    image.alpha_composite(edges)
    for i, layer in enumerate(layers):
        colour = OUTPUT_NODE if i == len(layers) - 1 else NODE
        for x, y in layer:
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def svg_text(size: int = 256) -> str:
    layers, radius = layout(size)
    inset = size * 0.03
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
             f'viewBox="0 0 {size} {size}">',
             f'<rect x="{inset:g}" y="{inset:g}" width="{size - 2 * inset:g}" '
             f'height="{size - 2 * inset:g}" rx="{size * 0.2:g}" fill="{BACKGROUND}"/>',
             f'<g stroke="#ffffff" stroke-opacity="{EDGE[3] / 255:.2f}" '
             f'stroke-width="{size * 0.016:g}">']
    for left, right in zip(layers, layers[1:], strict=False):
        for (x1, y1) in left:
            for (x2, y2) in right:
                parts.append(f'<line x1="{x1:.2f}" y1="{y1:.2f}" x2="{x2:.2f}" y2="{y2:.2f}"/>')
    parts.append("</g>")
    for i, layer in enumerate(layers):
        colour = OUTPUT_NODE if i == len(layers) - 1 else NODE
        for x, y in layer:
            parts.append(f'<circle cx="{x:.2f}" cy="{y:.2f}" r="{radius:.2f}" fill="{colour}"/>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main() -> None:
    for size in SIZES:
        draw_png(size).save(HERE / f"workbench-{size}.png", optimize=True)
    (HERE / "workbench.svg").write_text(svg_text(), encoding="utf-8")
    print(f"wrote workbench.svg and {len(SIZES)} PNGs to {HERE}")


if __name__ == "__main__":
    main()
