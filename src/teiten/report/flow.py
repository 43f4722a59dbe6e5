"""Draw a section's attack-flow figure (exploit → download → infected device → scanning).

Every box comes from the section's evidence (``Section.flow``, built from the
campaign's linked alerts and the masked sample's indicators): the exploited
port and CVE, the download URLs with their hosts masked, the share of
sources the exploit and the scanning have in common, and the scanned ports
with their Mirai share. Nothing is hard-coded to the seed case.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from teiten.report.style import PALETTE, figure_style, save

TEXT = {
    "ja": {
        "exploit": "脆弱性を悪用する\nアクセス\n宛先 {port}\n{cves}",
        "download": "不正プログラムの\nダウンロード\n{urls}",
        "infected": "感染した機器\n({segment}の発信元)\n共通の発信元 {shared} 件",
        "scan": "Telnet による探索\n{ports}\nMirai の特徴",
        "loop": "新たな感染対象へ",
        "domestic": "国内",
        "foreign": "国外",
        "all": "国内外",
    },
    "en": {
        "exploit": "Exploit request\nto {port}\n{cves}",
        "download": "Malware\ndownload\n{urls}",
        "infected": "Infected device\n({segment} sources)\n{shared} sources shared",
        "scan": "Telnet scanning\n{ports}\nMirai feature",
        "loop": "towards new victims",
        "domestic": "domestic",
        "foreign": "foreign",
        "all": "all",
    },
}


def flow_texts(flow: dict[str, Any], lang: str) -> list[str]:
    """The four box texts of the figure, in order."""
    t = TEXT[lang]
    urls = "\n".join(_short(u) for u in flow["downloads"]) or "-"
    return [
        t["exploit"].format(port=flow["exploit_port"].upper(), cves=", ".join(flow["cves"])),
        t["download"].format(urls=urls),
        t["infected"].format(
            segment=t.get(flow["scan_segment"], flow["scan_segment"]), shared=flow["shared_sources"]
        ),
        t["scan"].format(ports=" / ".join(p.upper() for p in flow["scan_ports"])),
    ]


def _short(url: str, limit: int = 26) -> str:
    url = url.split("://", 1)[-1]
    return url if len(url) <= limit else url[: limit - 1] + "…"


def flow_figure(flow: dict[str, Any], stem: Path, lang: str) -> list[Path]:
    """Draw the flow as four boxes joined by arrows and a loop back; writes PNG and SVG."""
    texts = flow_texts(flow, lang)
    width, gap = 1.0, 0.45
    with figure_style(lang) as plt:
        fig, ax = plt.subplots(figsize=(7.2, 2.2))
        ax.set_axis_off()
        ax.set_xlim(-0.1, 4 * width + 3 * gap + 0.1)
        ax.set_ylim(-0.4, 0.95)
        centres = []
        for i, text in enumerate(texts):
            x = i * (width + gap)
            centres.append(x + width / 2)
            ax.add_patch(
                plt.Rectangle(
                    (x, 0.15), width, 0.75, facecolor="#f2f6fa", edgecolor=PALETTE[0], linewidth=1.2
                )
            )
            ax.text(x + width / 2, 0.525, text, ha="center", va="center", fontsize=7.5)
        for i in range(3):
            x = i * (width + gap) + width
            ax.annotate(
                "", xy=(x + gap, 0.525), xytext=(x, 0.525),
                arrowprops={"arrowstyle": "-|>", "color": PALETTE[1], "linewidth": 1.4},
            )  # fmt: skip
        ax.annotate(
            "", xy=(centres[0], 0.15), xytext=(centres[-1], 0.15),
            arrowprops={"arrowstyle": "-|>", "color": PALETTE[1], "linewidth": 1.2,
                        "connectionstyle": "bar,fraction=-0.12"},
        )  # fmt: skip
        ax.text(
            (centres[0] + centres[-1]) / 2, -0.3, TEXT[lang]["loop"], ha="center",
            fontsize=7.5, color=PALETTE[1],
        )  # fmt: skip
        fig.tight_layout()
        paths = save(fig, stem)
        plt.close(fig)
    return paths
