"""`cont.dat`, the ALMA pipeline's file of continuum ranges per field and spw: written and parsed here.

The format (version 2 of the pipeline's contfilehandler, which it still reads):

    Field: NGC_2872

    SpectralWindow: 25
    229.9278125000~230.3500000000GHz LSRK
    230.6500000000~230.9200000000GHz LSRK

    SpectralWindow: 27
    ALL

    SpectralWindow: 29
    NONE

One range per line (lower~upper, a unit of Hz, kHz, MHz or GHz, then the frame); "ALL" means the whole
spw is continuum and "NONE" (or no range at all) that none of it is. The parser also accepts what the
pipeline's later versions write: a spw name after the id ("SpectralWindow: 25 X123#ALMA_RB_06#BB_1"),
"Flags:" lines (ALLCONT means all continuum), several ranges on one line separated by ';', and '#'
comments. Anything else is refused with the line number and what was expected, because an operator's
edited file is precisely where a typo must not silently change the continuum.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from aperture_contracts.continuum import FrequencyRange
from aperture_shared.errors import BadInput

# Frames a cont.dat range may be given in; findcont converts TOPO to LSRK with the data's own times.
SUPPORTED_FRAMES = ("LSRK", "TOPO")
_UNITS_HZ = {"hz": 1.0, "khz": 1e3, "mhz": 1e6, "ghz": 1e9}
# Builds the error for a line: (line number, the line as written, what is wrong and what to write).
Refuse = Callable[[int, str, str], BadInput]
_NUMBER = r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
_RANGE = re.compile(rf"^\s*{_NUMBER}\s*~\s*{_NUMBER}\s*([A-Za-z]+)\s*$")


@dataclass(frozen=True)
class ContDatRange:
    low_hz: float
    high_hz: float
    frame: str


@dataclass
class ContDatEntry:
    """The continuum of one field in one spw, as the file states it."""

    field_name: str
    spw_id: int
    spw_name: str | None
    line: int  # where its SpectralWindow line is, for messages
    ranges: list[ContDatRange] = field(default_factory=list)
    all_continuum: bool = False
    flags: list[str] = field(default_factory=list)

    @property
    def no_continuum(self) -> bool:
        return not self.all_continuum and not self.ranges


@dataclass
class ContDat:
    entries: list[ContDatEntry]

    def find(self, field_name: str, spw_id: int, spw_name: str | None = None) -> ContDatEntry | None:
        """The entry for a field and spw: by spw name when the file names spws and the name is known
        (spw ids differ between executions; names do not), else by id."""
        candidates = [entry for entry in self.entries if entry.field_name == field_name]
        if spw_name:
            for entry in candidates:
                if entry.spw_name == spw_name:
                    return entry
        for entry in candidates:
            if entry.spw_id == spw_id:
                return entry
        return None


def format_cont_dat(
    field_name: str, spw_id: int, ranges: list[FrequencyRange], frame: str, *, all_continuum: bool = False
) -> str:
    """cont.dat text for one field and spw; ALL when the whole spw is continuum, NONE when none is."""
    lines = [f"Field: {field_name}", "", f"SpectralWindow: {spw_id}"]
    if all_continuum:
        lines.append("ALL")
    elif not ranges:
        lines.append("NONE")
    else:
        lines.extend(
            f"{r.low_hz / 1e9:.10f}~{r.high_hz / 1e9:.10f}GHz {frame}" for r in sorted(ranges, key=lambda r: r.low_hz)
        )
    return "\n".join(lines) + "\n\n"


def parse_cont_dat(text: str, source: str = "cont.dat") -> ContDat:
    """Parse a cont.dat; raises BadInput naming the line and what was expected."""
    entries: list[ContDatEntry] = []
    field_name: str | None = None
    current: ContDatEntry | None = None

    def refuse(number: int, line: str, problem: str) -> BadInput:
        return BadInput(f"{source} line {number} ({line.strip()!r}): {problem}")

    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("Field:"):
            field_name = line.removeprefix("Field:").strip().strip("\"'").strip()
            if not field_name:
                raise refuse(number, raw, "a Field line needs the field's name, e.g. 'Field: NGC_2872'")
            current = None
            continue
        if line.startswith("SpectralWindow:"):
            if field_name is None:
                raise refuse(number, raw, "a SpectralWindow line must follow a 'Field: <name>' line")
            current = _spectral_window(line, field_name, number, raw, entries, refuse)
            entries.append(current)
            continue
        if current is None:
            raise refuse(
                number, raw,
                "expected 'Field: <name>' or 'SpectralWindow: <id>' before ranges, ALL, NONE or Flags",
            )
        if line.startswith("Flags:"):
            current.flags.extend(line.removeprefix("Flags:").split())
            current.all_continuum |= "ALLCONT" in current.flags
            continue
        if line in ("ALL", "ALLCONT"):
            current.all_continuum = True
            continue
        if line == "NONE":
            continue
        current.ranges.extend(_ranges(line, number, raw, refuse))
    for entry in entries:
        if entry.all_continuum and entry.ranges:
            raise BadInput(
                f"{source} line {entry.line}: field {entry.field_name!r} spw {entry.spw_id} says ALL and also lists "
                "ranges; keep one of the two"
            )
    return ContDat(entries)


def _spectral_window(
    line: str, field_name: str, number: int, raw: str, entries: list[ContDatEntry], refuse: Refuse
) -> ContDatEntry:
    parts = line.removeprefix("SpectralWindow:").split()
    if not parts or len(parts) > 2 or not parts[0].isdigit():
        raise refuse(
            number, raw, "expected 'SpectralWindow: <id>' or 'SpectralWindow: <id> <name>' with a whole-number id"
        )
    spw_id = int(parts[0])
    if any(e.field_name == field_name and e.spw_id == spw_id for e in entries):
        raise refuse(number, raw, f"field {field_name!r} spw {spw_id} appears twice; merge its ranges into one entry")
    name = parts[1] if len(parts) == 2 else None
    return ContDatEntry(field_name=field_name, spw_id=spw_id, spw_name=name, line=number)


def _ranges(line: str, number: int, raw: str, refuse: Refuse) -> list[ContDatRange]:
    """One or more ranges separated by ';', each with its frame or taking the frame that ends the line."""
    pieces = [piece.strip() for piece in line.split(";")]
    found: list[ContDatRange] = []
    frame: str | None = None
    for piece in reversed(pieces):
        body, _, last_word = piece.rpartition(" ")
        if body.strip() and "~" not in last_word:
            frame = last_word.upper()
        else:
            body = piece
        if frame is None:
            raise refuse(
                number, raw,
                f"a range needs its frame after it, e.g. '230.1~230.4GHz LSRK' ({' or '.join(SUPPORTED_FRAMES)})",
            )
        if frame not in SUPPORTED_FRAMES:
            raise refuse(
                number, raw, f"frame {frame!r} is not supported; give ranges in {' or '.join(SUPPORTED_FRAMES)}"
            )
        match = _RANGE.match(body)
        if not match:
            raise refuse(
                number, raw,
                f"{body.strip()!r} is not a range; expected <low>~<high><unit> with a unit of Hz, kHz, MHz or GHz",
            )
        low, high, unit = float(match[1]), float(match[2]), match[3].lower()
        if unit not in _UNITS_HZ:
            raise refuse(number, raw, f"unit {match[3]!r} is not a frequency unit (Hz, kHz, MHz, GHz)")
        if low <= 0 or high < low:
            raise refuse(
                number, raw, f"the range {body.strip()!r} must run from a lower to a higher positive frequency"
            )
        found.append(ContDatRange(low * _UNITS_HZ[unit], high * _UNITS_HZ[unit], frame))
    return found[::-1]
