"""Who has control: the operator's takeover requests, from a topic or a joystick deadman.

Takeover is active while either source asks for it: the engage topic latches (true until
false), the deadman button only while held. Intervention segments are kept with their times,
for the episode metadata.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class InterventionState:
    topic_engaged: bool = False
    deadman_held: bool = False
    segments: list[tuple[float, float | None]] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.topic_engaged or self.deadman_held

    def _update(self, t: float, was: bool) -> bool:
        now = self.active
        if now and not was:
            self.segments.append((t, None))
        elif was and not now and self.segments and self.segments[-1][1] is None:
            self.segments[-1] = (self.segments[-1][0], t)
        return now != was

    def engage(self, engaged: bool, t: float) -> bool:
        """Engage-topic request; returns True when the active state changed."""
        was = self.active
        self.topic_engaged = bool(engaged)
        return self._update(t, was)

    def joystick(self, buttons: list[int], deadman_button: int, t: float) -> bool:
        """A /joy message; the deadman counts only if the button exists and is pressed."""
        if deadman_button < 0:
            return False
        was = self.active
        self.deadman_held = deadman_button < len(buttons) and bool(buttons[deadman_button])
        return self._update(t, was)
