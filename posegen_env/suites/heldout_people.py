"""The test people: a stream of the people space that only the test suites draw from.

``render.avatar.people`` draws training and validation people from streams 0 and 1; the test
people come from ``HELDOUT_STREAM``, which is written here and nowhere else. No sampler, policy
or training code may import this module (an import-linter contract, as for the held-out poses),
so no training data can show a test person: they are disjoint by construction, not by luck.
"""

from __future__ import annotations

from posegen_env.render.avatar.people import PeopleRenderer
from posegen_env.render.avatar.renderer import AvatarRenderer

HELDOUT_STREAM = 7
HELDOUT_PEOPLE = 16


def with_heldout_people(avatar: AvatarRenderer) -> None:
    """Add the test people to ``avatar`` when it is a people renderer (a cast carries its own
    held-out subjects; one person has none)."""
    if isinstance(avatar, PeopleRenderer):
        avatar.add_people("heldout", HELDOUT_STREAM, HELDOUT_PEOPLE, heldout=True)


def heldout_tag(avatar) -> str:
    """What names the test people in a suite's cache path ("" for renderers without them)."""
    return f"-heldout{HELDOUT_STREAM}x{HELDOUT_PEOPLE}" if isinstance(avatar, PeopleRenderer) else ""
