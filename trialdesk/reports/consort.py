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


def _svg(width: int, height: int, parts: list[str]) -> str:
    """The SVG document of a flow diagram: its parts and the arrow-head marker they use."""
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif">'
        '<defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="6" refY="4" '
        'orient="auto"><path d="M0,0 L8,4 L0,8 z"/></marker></defs>'
    )
    return head + "".join(parts) + "</svg>"


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
    return _svg(width, y, parts)


# --------------------------------------------------------------------------------------------
# By arm (the unblinded reports)


@dataclass(frozen=True)
class ArmFlow:
    """The boxes of one arm below randomization: allocation, follow-up, analysis."""

    arm: str
    allocated: int
    received: int
    lost: int
    withdrawn: int
    completed: int
    ongoing: int
    analysed_itt: int
    analysed_pp: int
    analysed_safety: int

    def check(self) -> None:
        """Raise :class:`ConsortError` (the box named with its arm) unless the arm adds up."""
        followed = self.completed + self.ongoing + self.lost + self.withdrawn
        if self.allocated != followed:
            raise ConsortError(f"{self.arm}.allocated", self.allocated, followed)
        if self.received > self.allocated:
            raise ConsortError(f"{self.arm}.received", self.received, self.allocated)
        if self.analysed_itt != self.allocated:
            raise ConsortError(f"{self.arm}.analysed_itt", self.analysed_itt, self.allocated)
        if self.analysed_safety != self.received:
            raise ConsortError(f"{self.arm}.analysed_safety", self.analysed_safety, self.received)
        if self.analysed_pp > self.analysed_itt:
            raise ConsortError(f"{self.arm}.analysed_pp", self.analysed_pp, self.analysed_itt)

    def lines(self) -> list[tuple[str, list[str]]]:
        """(stage, lines of text) of the arm's column."""
        return [
            (
                "Allocation",
                [
                    f"Allocated to {self.arm} (n={self.allocated})",
                    f"Received allocated intervention (n={self.received})",
                    f"Did not receive it (n={self.allocated - self.received})",
                ],
            ),
            (
                "Follow-up",
                [
                    f"Lost to follow-up (n={self.lost})",
                    f"Discontinued (withdrew) (n={self.withdrawn})",
                    f"Completed (n={self.completed})",
                    f"Still in follow-up (n={self.ongoing})",
                ],
            ),
            (
                "Analysis",
                [
                    f"Analysed, ITT (n={self.analysed_itt})",
                    f"Analysed, per protocol (n={self.analysed_pp})",
                    f"Excluded from PP (n={self.analysed_itt - self.analysed_pp})",
                    f"Analysed, safety (n={self.analysed_safety})",
                ],
            ),
        ]


@dataclass(frozen=True)
class ConsortByArm:
    """The pooled enrolment boxes above randomization and one column per arm below it."""

    enrolment: Consort
    arms: tuple[ArmFlow, ...]

    def check(self) -> None:
        """The pooled diagram adds up, each arm adds up, and the arms add up to the pool.

        Raises
        ------
        ConsortError
            Naming the first box that does not add up (``arm.box`` for an arm's box).
        """
        self.enrolment.check()
        for flow in self.arms:
            flow.check()
        pooled = self.enrolment
        for name, total in (
            ("randomized", pooled.randomized),
            ("received", pooled.received),
            ("lost", pooled.lost),
            ("withdrawn", pooled.withdrawn),
            ("completed", pooled.completed),
            ("ongoing", pooled.ongoing),
        ):
            field_name = "allocated" if name == "randomized" else name
            parts = sum(getattr(flow, field_name) for flow in self.arms)
            if parts != total:
                raise ConsortError(name, total, parts)


def consort_by_arm_svg(consort: ConsortByArm) -> str:
    """The flow diagram with the enrolment boxes on top and one column per arm below."""
    line_h, pad, gap, label_w = 16, 6, 20, 90
    n_arms = max(len(consort.arms), 1)
    col_w = 220
    width = label_w + n_arms * (col_w + 10) + 10
    parts: list[str] = []

    def box(x: int, y: int, w: int, lines: list[str], bold_first: bool = False) -> int:
        height = pad * 2 + line_h * len(lines)
        parts.append(
            f'<rect x="{x}" y="{y}" width="{w}" height="{height}" fill="white" stroke="black"/>'
        )
        for i, line in enumerate(lines):
            weight = ' font-weight="bold"' if bold_first and i == 0 else ""
            parts.append(
                f'<text x="{x + pad}" y="{y + pad + line_h * (i + 1) - 4}" font-size="11"'
                f"{weight}>{escape(line)}</text>"
            )
        return height

    def label(y: int, height: int, stage: str) -> None:
        parts.append(
            f'<text x="6" y="{y + height / 2 + 4}" font-size="11" font-weight="bold">'
            f"{escape(stage)}</text>"
        )

    pooled = consort.enrolment
    centre = label_w + (width - label_w) // 2
    top_w = min(300, width - label_w - 10)
    y = 10
    h = box(centre - top_w // 2, y, top_w, [f"Assessed for eligibility (n={pooled.assessed})"])
    label(y, h, "Enrolment")
    excluded = [
        f"Excluded (n={pooled.excluded})",
        f"Not meeting criteria (n={pooled.excluded_not_eligible})",
        f"Declined / withdrew (n={pooled.excluded_declined})",
        f"Screening not finished (n={pooled.pending})",
    ]
    y2 = y + h + gap
    side_x = centre + 20
    h2 = box(side_x, y2, width - side_x - 10, excluded)
    parts.append(_arrow(centre, y2 + h2 // 2, side_x, y2 + h2 // 2))
    y3 = y2 + h2 + gap
    parts.append(_arrow(centre - 40, y + h, centre - 40, y3))
    h3 = box(centre - top_w // 2, y3, top_w, [f"Randomized (n={pooled.randomized})"])
    label(y3, h3, "Randomization")
    y = y3 + h3 + gap
    columns = [flow.lines() for flow in consort.arms]
    for stage_index in range(3):
        heights = []
        for index, flow_lines in enumerate(columns):
            x = label_w + index * (col_w + 10)
            stage, lines = flow_lines[stage_index]
            heights.append(box(x, y, col_w, lines, bold_first=stage_index == 0))
            parts.append(_arrow(x + col_w // 2, y - gap, x + col_w // 2, y))
        stage_h = max(heights or [line_h])
        label(y, stage_h, columns[0][stage_index][0] if columns else "")
        y += stage_h + gap
    return _svg(width, y, parts)
