"""The matrix itself: every face answers every operation, by doing it or saying why not."""

from __future__ import annotations

import pytest

from tests.rules.faces import FACES, Face


@pytest.mark.parametrize("cls", FACES, ids=[f.name for f in FACES])
def test_every_face_implements_or_lists_every_operation(cls: type[Face]) -> None:
    unanswered, both = [], []
    for operation in Face.OPERATIONS:
        implemented = getattr(cls, operation) is not getattr(Face, operation)
        listed = operation in cls.gaps
        if not implemented and not listed:
            unanswered.append(operation)
        if implemented and listed:
            both.append(operation)
    assert not unanswered, f"{cls.name} neither implements nor lists: {unanswered}"
    assert not both, f"{cls.name} implements and lists as a gap: {both}"
    assert set(cls.gaps) <= set(Face.OPERATIONS), set(cls.gaps) - set(Face.OPERATIONS)
    assert set(cls.variants) <= set(Face.OPERATIONS), set(cls.variants) - set(Face.OPERATIONS)


def test_faces_have_distinct_names() -> None:
    names = [f.name for f in FACES]
    assert len(set(names)) == len(names) and all(names)
