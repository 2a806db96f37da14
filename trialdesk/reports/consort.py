"""The CONSORT 2025 flow diagram of a blinded report: the numbers, their arithmetic, an SVG."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape


class ConsortError(ValueError):
    """The boxes of the flow diagram do not add up."""

    def __init__(self, field: str, value: int, expected: int) -> None:
        super().__init__(f"CONSORT box {field}={value} but its parts add up to {expected}")
        self.field, self.value, self.expected = field, value, expected


@dataclass(frozen=True)
class Consort:
    """The boxes of the flow diagram, arms pooled."""

    assessed: int
    excluded_not_eligible: int
    excluded_declined: int
    pending: int
    randomized: int
    received: int
    lost: int
    withdrawn: int
    completed: int
    ongoing: int
    analysed_itt: int
    analysed_safety: int

    @property
    def excluded(self) -> int:
        """Excluded before randomization: not eligible plus declined."""
        return self.excluded_not_eligible + self.excluded_declined

    def check(self) -> None:
        """Raise :class:`ConsortError` unless every box is the sum of its parts.

        Raises
        ------
        ConsortError
            Naming the first box that does not add up.
        """
        sums = (
            ("assessed", self.assessed, self.excluded + self.pending + self.randomized),
            (
                "randomized",
                self.randomized,
                self.completed + self.ongoing + self.lost + self.withdrawn,
            ),
            ("analysed_itt", self.analysed_itt, self.randomized),
        )
        for name, value, expected in sums:
            if value != expected:
                raise ConsortError(name, value, expected)
        if self.received > self.randomized:
            raise ConsortError("received", self.received, self.randomized)
        if self.analysed_safety != self.received:
            raise ConsortError("analysed_safety", self.analysed_safety, self.received)

    def boxes(self) -> list[tuple[str, list[str]]]:
        """The boxes top to bottom: (stage, lines of text)."""
        return [
            ("Enrolment", [f"Assessed for eligibility (n={self.assessed})"]),
            (
                "Excluded",
                [
                    f"Excluded (n={self.excluded})",
                    f"Not meeting inclusion criteria (n={self.excluded_not_eligible})",
                    f"Declined / withdrew (n={self.excluded_declined})",
                    f"Not excluded, screening not finished (n={self.pending})",
                ],
            ),
            ("Randomization", [f"Randomized (n={self.randomized})"]),
            (
                "Allocation",
                [
                    f"Allocated, arms pooled (n={self.randomized})",
                    f"Received allocated intervention (n={self.received})",
                ],
            ),
            (
                "Follow-up",
                [
                    f"Lost to follow-up (n={self.lost})",
                    f"Discontinued (withdrew) (n={self.withdrawn})",
                    f"Completed (n={self.completed}); still in follow-up (n={self.ongoing})",
                ],
            ),
            (
                "Analysis",
                [
                    f"Analysed, intention to treat (n={self.analysed_itt})",
                    f"Analysed, safety (n={self.analysed_safety})",
                ],
            ),
        ]


#: Stages drawn beside the main column, reached by a horizontal arrow.
_SIDE_STAGES = frozenset({"Excluded"})


def _arrow(x1: int, y1: int, x2: int, y2: int) -> str:
    return (
        f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="black" marker-end="url(#arrow)"/>'
    )


def consort_svg(consort: Consort) -> str:
    """The flow diagram as an SVG document: one box per stage, arrows between them."""
    width, line_h, pad, gap = 560, 18, 8, 22
    parts: list[str] = []
    y = 10
    main: list[tuple[int, int]] = []
    side: list[tuple[int, int]] = []
    for stage, lines in consort.boxes():
        height = pad * 2 + line_h * len(lines)
        x = 230 if stage in _SIDE_STAGES else 150
        box_w = width - x - 10
        parts.append(
            f'<rect x="{x}" y="{y}" width="{box_w}" height="{height}" '
            'fill="white" stroke="black" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="10" y="{y + height / 2 + 4}" font-size="12" font-weight="bold">'
            f"{escape(stage)}</text>"
        )
        for i, line in enumerate(lines):
            parts.append(
                f'<text x="{x + pad}" y="{y + pad + line_h * (i + 1) - 4}" font-size="12">'
                f"{escape(line)}</text>"
            )
        (side if stage in _SIDE_STAGES else main).append((y, y + height))
        y += height + gap
    for (_, bottom), (top, _) in zip(main, main[1:], strict=False):
        parts.append(_arrow(170, bottom, 170, top))
    for top, bottom in side:
        parts.append(_arrow(170, (top + bottom) // 2, 230, (top + bottom) // 2))
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y}" '
        f'viewBox="0 0 {width} {y}" font-family="sans-serif">'
        '<defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="6" refY="4" '
        'orient="auto"><path d="M0,0 L8,4 L0,8 z"/></marker></defs>'
    )
    return head + "".join(parts) + "</svg>"
