"""Every subject's state as one moderation instance knows it (no I/O here).

Filled from the store at start, then from the events of every change
(services.moderation.follower). An event carries the command's occurred_at,
which `judge` keeps non-decreasing per subject, so the newer one wins whatever
order two events arrive in; only two different states at the same moment cannot
be told apart here, and the store is asked."""

from services.moderation.domain import KnownState, ScreeningFacts, Subject, screening_facts, screening_subjects


class KnownSubjects:
    def __init__(self) -> None:
        self._known: dict[str, KnownState] = {}

    def __len__(self) -> int:
        return len(self._known)

    def set(self, key: str, known: KnownState) -> None:
        """What the store holds: taken as it is."""
        self._known[key] = known

    def learn(self, key: str, known: KnownState) -> bool:
        """An event's change, unless what is known is newer. False: the same moment
        with another state, which only the store can settle."""
        held = self._known.get(key)
        if held is None or known.as_of > held.as_of:
            self._known[key] = known
            return True
        return known.as_of < held.as_of or known.state == held.state

    def state_of(self, subject: Subject) -> str:
        held = self._known.get(subject.key)
        return subject.initial_state if held is None else held.state

    def screening_facts_each(self, pairs: list[tuple[str, str]]) -> list[ScreeningFacts]:
        return screening_facts([self.state_of(subject) for subject in screening_subjects(pairs)])
