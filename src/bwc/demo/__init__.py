"""``bwc demo``: a simulated shift end to end, from buffering to erase, measured at the end."""

from bwc.demo.cameras import Video
from bwc.demo.errors import ShiftError
from bwc.demo.report import ShiftSummary, table
from bwc.demo.shift import STEPS, Narrator, run_shift

__all__ = ["STEPS", "Narrator", "ShiftError", "ShiftSummary", "Video", "run_shift", "table"]
